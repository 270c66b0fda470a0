"""``quayside export bentoml``: the exported Bento, under a real ``bentoml serve``, answers as ``quayside serve`` does.

BentoML runs in its own venv (tests/venvs.py). The comparison is exact: both servers
run the same ONNX graph on the same ONNX Runtime version with the same input handling.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

import quayside
from quayside.errors import AlreadyExistsError, UntrustedPackageError
from quayside.packager.exporters.bentoml import export_bentoml, render_bento
from quayside.packager.manifest import read_manifest
from tests.db.fixtures import free_port
from tests.serving.conftest import start_server

QUAYSIDE = str(Path(sys.executable).parent / "quayside")
READY_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def plans_package(mixed_pipeline, tmp_path_factory) -> Path:
    """A classifier on a table of float, int and string columns, converted to ONNX."""
    pipeline, X = mixed_pipeline
    path = tmp_path_factory.mktemp("bento") / "plans"
    quayside.save_model(pipeline, path, input_example=X.head(20), to_onnx=True, name="plans")
    return path


@pytest.fixture(scope="module")
def bento_dir(plans_package, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("bento-out") / "plans-bento"
    result = subprocess.run(
        [QUAYSIDE, "export", "bentoml", str(plans_package), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "bentoml serve service:Plans" in result.stdout
    return output


@pytest.fixture(scope="module")
def bento_server(bento_dir, bentoml_venv, tmp_path_factory) -> Iterator[str]:
    """``bentoml serve`` on the exported directory, on a free port."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("bento-log") / "bentoml.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTOML_")}
    env |= {"BENTOML_HOME": str(log_path.parent / "home"), "BENTOML_DO_NOT_TRACK": "True"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(bentoml_venv.bin("bentoml")), "serve", "service:Plans", "--working-dir", str(bento_dir),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"bentoml serve exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"bentoml serve not ready after {READY_TIMEOUT_S} s:\n{log_path.read_text()}"
                )
            time.sleep(0.2)  # polling for the port to open
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # bentoml serve starts worker processes
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture(scope="module")
def quayside_server(plans_package, tmp_path_factory):
    server = start_server(plans_package, "--quiet", log_dir=tmp_path_factory.mktemp("serve-log"))
    yield server.url
    server.stop()


def test_the_exported_bento_serves_the_same_predictions_as_quayside_serve(
    bento_server, quayside_server, mixed_pipeline
):
    _, X = mixed_pipeline
    rows = X.iloc[20:80]
    columns = {name: rows[name].tolist() for name in rows.columns}

    bento = httpx.post(f"{bento_server}/predict", json={"inputs": columns}, timeout=30)
    assert bento.status_code == 200, bento.text
    served = httpx.post(
        f"{quayside_server}/invocations",
        json={"dataframe_split": {"columns": list(columns), "data": rows.values.tolist()}},
        timeout=30,
    )
    assert served.status_code == 200, served.text

    expected = served.json()["predictions"]
    answered = bento.json()
    assert set(answered) == {"label", "probabilities"}
    np.testing.assert_array_equal(answered["label"], expected["label"])
    np.testing.assert_array_equal(answered["probabilities"], expected["probabilities"])
    assert len(answered["label"]) == 60


def test_the_bento_checks_inputs_against_the_signature(bento_server):
    missing = httpx.post(f"{bento_server}/predict", json={"inputs": {"income": [1.0]}}, timeout=30)
    assert missing.status_code == 400 and "missing" in missing.text
    wrong = {"income": [1.0], "age": [1.5], "plan": ["pro"]}
    bad_type = httpx.post(f"{bento_server}/predict", json={"inputs": wrong}, timeout=30)
    assert bad_type.status_code == 400 and "'age'" in bad_type.text


def test_the_export_copies_the_verified_package_and_writes_a_bentofile(bento_dir, plans_package):
    assert read_manifest(bento_dir / "model").digest() == read_manifest(plans_package).digest()
    quayside.load_model(bento_dir / "model")  # every digest still matches
    bentofile = yaml.safe_load((bento_dir / "bentofile.yaml").read_text())
    assert bentofile["service"] == "service:Plans"
    assert bentofile["labels"] == {"quayside.model": "plans", "quayside.flavor": "sklearn"}
    requirements = (bento_dir / "requirements.txt").read_text().split()
    assert requirements[0] == "bentoml>=1.2"
    assert any(r.startswith("onnxruntime==") for r in requirements)
    assert not any(r.startswith(("scikit-learn", "quayside")) for r in requirements)


def test_rendering_is_pure_and_the_service_is_valid_python(plans_package, iris_classifier, iris, tmp_path):
    manifest = read_manifest(plans_package)
    assert render_bento(manifest).files == render_bento(manifest).files
    ast.parse(render_bento(manifest).files["service.py"])

    native = tmp_path / "iris"
    quayside.save_model(iris_classifier, native, input_example=iris[0].head(5), name="iris-model")
    with pytest.raises(UntrustedPackageError, match="--trust"):
        render_bento(read_manifest(native))
    bento = render_bento(read_manifest(native), trust=True, quayside_requirement="quayside==1.0")
    assert bento.class_name == "IrisModel"
    service = bento.files["service.py"]
    ast.parse(service)
    assert "quayside.load_model(PACKAGE, trust=True" in service
    assert "quayside==1.0" in bento.files["requirements.txt"].split()


def test_exporting_over_an_existing_directory_is_refused(plans_package, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(AlreadyExistsError):
        export_bentoml(plans_package, tmp_path / "taken")
