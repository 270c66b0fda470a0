"""The build context, rendered without an engine: requirements, Dockerfile, Quayside's own wheel."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import quayside
from quayside.errors import UsageError
from quayside.packager.docker.context import ModelImage, docker_quote, image_requirements, render_dockerfile
from quayside.packager.docker.wheelhouse import quayside_wheel
from quayside.packager.manifest import read_manifest


@pytest.fixture(scope="module")
def onnx_manifest(tmp_path_factory, diabetes):
    X, y = diabetes
    X = X.astype(np.float32)
    path = tmp_path_factory.mktemp("m") / "diabetes"
    quayside.save_model(Ridge().fit(X, y), path, input_example=X[:5], to_onnx=True, name="diabetes")
    return read_manifest(path)


def test_an_onnx_servable_model_ships_onnx_runtime_and_not_its_training_framework(onnx_manifest):
    requirements = image_requirements(onnx_manifest, lambda name: "1.0")
    names = {r.split("==")[0] for r in requirements}
    assert {"onnxruntime", "numpy", "fastapi", "uvicorn", "uvloop", "httptools", "orjson"} <= names
    assert {"grpcio", "grpcio-health-checking", "protobuf"} <= names  # the gRPC Open Inference Protocol
    assert not names & {"scikit-learn", "skl2onnx", "cloudpickle", "sqlalchemy", "typer"}
    assert any(r.startswith("onnxruntime==") for r in requirements)


def test_the_dockerfile_puts_dependencies_before_the_model_and_labels_last(onnx_manifest):
    model = ModelImage.of(onnx_manifest, version="7", source_uri="models:/diabetes/7")
    text = render_dockerfile(
        base_image="base:1",
        model=model,
        labels={"io.quayside.model.signature": '{"a": "$x"}'},
        quayside_version="0",
    )
    assert text.index("COPY wheelhouse/") < text.index("COPY --from=builder") < text.index("COPY model/")
    assert text.index("COPY model/") < text.index("LABEL")
    assert 'ENV MODEL_VERSION="7"' in text
    assert "EXPOSE 8080 8081" in text and "GRPC_PORT=8081" in text  # REST and gRPC
    assert 'io.quayside.model.signature="{\\"a\\": \\"\\$x\\"}"' in text
    with pytest.raises(UsageError):
        docker_quote("two\nlines")


def test_quaysides_own_wheel_is_reproducible_and_leaves_the_cli_out(tmp_path):
    package_dir = Path(quayside.__file__).parent
    first = quayside_wheel(package_dir, "1.0", tmp_path / "a")
    second = quayside_wheel(package_dir, "1.0", tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "quayside/serving/server.py" in names and "quayside-1.0.dist-info/RECORD" in names
    assert "quayside/oip/grpc_predict_v2_pb2_grpc.py" in names
    assert not [
        n for n in names if n.startswith(("quayside/cli/", "quayside/packager/docker/", "quayside/server/"))
    ]
    assert not [n for n in names if "__pycache__" in n]


def test_a_pickled_native_model_goes_into_an_image_only_with_trust_and_its_server_then_runs_with_trust(
    tmp_path, diabetes
):
    X, y = diabetes
    path = tmp_path / "native"
    quayside.save_model(Ridge().fit(X, y), path, input_example=X[:5], name="native")
    manifest = read_manifest(path)
    with pytest.raises(UsageError, match="build with --trust"):
        ModelImage.of(manifest, version="1", source_uri="x")
    model = ModelImage.of(manifest, version="1", source_uri="x", trust=True)
    assert model.runtime == "native" and model.trusted
    text = render_dockerfile(base_image="base:1", model=model, labels={}, quayside_version="0")
    assert 'CMD ["/opt/quayside/model", "--trust"]' in text
    requirements = image_requirements(manifest, lambda name: "1.0")
    assert any(r.startswith("scikit-learn") for r in requirements)


def test_trust_changes_nothing_for_an_onnx_servable_model(onnx_manifest):
    model = ModelImage.of(onnx_manifest, version="1", source_uri="x", trust=True)
    assert model.runtime == "onnx" and not model.trusted
    text = render_dockerfile(base_image="base:1", model=model, labels={}, quayside_version="0")
    assert 'CMD ["/opt/quayside/model"]' in text
