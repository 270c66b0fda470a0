"""The public surface is pinned, and importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import quayside


def test_public_api_is_exactly_this_list():
    assert sorted(quayside.__all__) == sorted(
        [
            "ActiveRun",
            "Client",
            "LoadedModel",
            "Metric",
            "QuaysideError",
            "RegistryClient",
            "Schema",
            "Signature",
            "TensorSpec",
            "Tolerance",
            "__version__",
            "active_run",
            "convert_package",
            "end_run",
            "infer_signature",
            "load_model",
            "log_artifact",
            "log_artifacts",
            "log_batch",
            "log_metric",
            "log_metrics",
            "log_model",
            "log_param",
            "log_params",
            "register_model",
            "save_model",
            "set_tag",
            "set_tags",
            "start_run",
        ]
    )
    for name in quayside.__all__:
        assert hasattr(quayside, name), name


def test_importing_quayside_loads_no_ml_framework_pandas_database_or_http_library():
    code = "import sys, json, quayside; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    heavy = {"pandas", "sklearn", "onnx", "onnxruntime", "torch", "xgboost", "lightgbm", "skl2onnx"}
    heavy |= {
        "sqlalchemy",
        "alembic",
        "httpx",
        "fastapi",
        "uvicorn",
        "quayside.registry",
        "quayside.tracking",
    }
    assert loaded & heavy == set()


def test_the_tracking_api_loads_on_first_use():
    code = "import sys, quayside; quayside.start_run; print('sqlalchemy' in sys.modules, quayside.Client.__name__)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).split() == ["False", "Client"]


def test_every_error_declares_a_code_and_an_http_status():
    from quayside import errors

    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.QuaysideError)
    ]
    assert len(classes) > 10
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), "error codes must be unique"
    assert all(400 <= c.http_status < 600 for c in classes)
