"""The public surface is pinned, and importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import quayside


def test_public_api_is_exactly_this_list():
    assert sorted(quayside.__all__) == sorted(
        [
            "LoadedModel",
            "QuaysideError",
            "Schema",
            "Signature",
            "TensorSpec",
            "Tolerance",
            "__version__",
            "convert_package",
            "infer_signature",
            "load_model",
            "save_model",
        ]
    )
    for name in quayside.__all__:
        assert hasattr(quayside, name), name


def test_importing_quayside_loads_no_ml_framework_or_pandas():
    code = "import sys, json, quayside; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    heavy = {"pandas", "sklearn", "onnx", "onnxruntime", "torch", "xgboost", "lightgbm", "skl2onnx"}
    assert loaded & heavy == set()


def test_every_error_declares_a_code_and_an_http_status():
    from quayside import errors

    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.QuaysideError)
    ]
    assert len(classes) > 10
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), "error codes must be unique"
    assert all(400 <= c.http_status < 600 for c in classes)
