"""``--ort-spinning``: ONNX Runtime's idle threads spin only when asked, and the server answers the same."""

from __future__ import annotations

import httpx
import numpy as np

import quayside
from quayside.packager.bodies import v2_body, v2_outputs
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import load_runtime
from quayside.serving.server import ModelSpec, load_for_serving, load_spec
from tests.serving.conftest import start_server

SPINNING = "session.intra_op.allow_spinning"


def _spinning_entry(runtime) -> str | None:
    """The session's spinning setting; None when unset (ONNX Runtime's default: spinning)."""
    session = runtime.model._run.__self__.session  # the OnnxRunner behind the loaded model
    try:
        return session.get_session_options().get_session_config_entry(SPINNING)
    except RuntimeError:  # "SessionOptions does not have configuration with key"
        return None


def test_a_served_session_does_not_spin_unless_asked(tensor_package):
    assert _spinning_entry(load_runtime(tensor_package)) == "0"
    assert _spinning_entry(load_runtime(tensor_package, spinning=True)) is None
    # ... and both ways a server loads a model take it from the options (--ort-spinning).
    spec = ModelSpec(str(tensor_package), None, None, str(tensor_package))
    for options, entry in ((ServeOptions(), "0"), (ServeOptions(ort_spinning=True), None)):
        assert _spinning_entry(load_spec(spec, options)) == entry
        assert _spinning_entry(load_for_serving(tensor_package, options)) == entry


def test_a_server_with_ort_spinning_answers_as_the_package_predicts(tensor_package, diabetes, tmp_path):
    X, _ = diabetes
    model = quayside.load_model(tensor_package)
    rows = {model.signature.inputs.names[0]: X[:5]}
    server = start_server(tensor_package, "--ort-spinning", log_dir=tmp_path)
    try:
        body = v2_body(rows, model.signature.inputs)
        response = httpx.post(f"{server.url}/v2/models/diabetes/infer", json=body, timeout=10)
        assert response.status_code == 200, response.text
        answered, expected = v2_outputs(response.json()), model.predict(rows)
        assert answered.keys() == expected.keys()
        for name, values in expected.items():
            np.testing.assert_allclose(answered[name], values, rtol=1e-6)
    finally:
        server.stop()
