"""``quayside import mlflow``: models saved by the real MLflow import, convert and predict as MLflow's own load does.

The MLflow side (saving, and MLflow's predictions) runs in MLflow's venv
(tests/packager/data/mlflow_save.py); the import runs here, without MLflow.
Tolerances: the native model must answer exactly as MLflow's load of it; the ONNX
conversion of the scikit-learn model within the parity tolerance it was checked
with (rtol 1e-4, atol 1e-5; labels exactly); an ONNX model exactly (the same graph
on the same ONNX Runtime version).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import quayside
from quayside.errors import UntrustedPackageError, UsageError
from quayside.packager.importers.mlflow import import_mlflow_model

SCRIPT = Path(__file__).parent / "data" / "mlflow_save.py"
QUAYSIDE = str(Path(sys.executable).parent / "quayside")


@pytest.fixture(scope="module")
def mlflow_models(mlflow_venv, tmp_path_factory) -> Path:
    """MLflow model directories saved by MLflow itself, and MLflow's predictions for them."""
    out = tmp_path_factory.mktemp("mlflow-models")
    X, y = load_iris(return_X_y=True)
    onnx_classifier = LogisticRegression(max_iter=1000).fit(X.astype(np.float32), y)
    graph = to_onnx(onnx_classifier, X[:1].astype(np.float32), options={"zipmap": False})
    (out / "iris.onnx").write_bytes(graph.SerializeToString())
    mlflow_venv.run(str(SCRIPT), str(out), str(out / "iris.onnx"), cwd=out)
    return out


@pytest.fixture(scope="module")
def mlflow_predictions(mlflow_models: Path) -> dict:
    return json.loads((mlflow_models / "predictions.json").read_text())


@pytest.fixture(scope="module")
def iris_rows():
    return load_iris(return_X_y=True, as_frame=True)[0]


def test_an_mlflow_skops_model_imports_without_trust_converts_to_onnx_and_predicts_like_mlflow(
    mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    result = import_mlflow_model(mlflow_models / "sklearn-skops", tmp_path / "iris")

    manifest = result.manifest
    assert result.mlflow_flavor == "sklearn" and manifest.flavor == "sklearn"
    assert manifest.onnx_servable and manifest.onnx.parity["passed"]
    assert manifest.signature.inputs.kind == "table"
    assert manifest.signature.inputs.names == list(iris_rows.columns)
    assert {s.dtype for s in manifest.signature.inputs.specs} == {"float64"}  # MLflow's "double"
    assert len(manifest.input_example["sepal length (cm)"]) == 10
    assert manifest.metadata["imported_from"]["flavor"] == "sklearn"
    assert any(r.startswith("scipy==") for r in manifest.environment.requirements)
    assert not any(r.startswith("mlflow") for r in manifest.environment.requirements)

    expected = mlflow_predictions["sklearn-skops"]
    onnx = quayside.load_model(tmp_path / "iris").predict(iris_rows)
    np.testing.assert_array_equal(onnx["label"], expected["label"])
    np.testing.assert_allclose(onnx["probabilities"], expected["probabilities"], rtol=1e-4, atol=1e-5)

    native = quayside.load_model(tmp_path / "iris", trust=True, runtime="native").predict(iris_rows)
    np.testing.assert_array_equal(native["label"], expected["label"])
    np.testing.assert_array_equal(native["probabilities"], np.asarray(expected["probabilities"]))


def test_an_mlflow_onnx_model_imports_with_its_graph_signature_and_predicts_exactly_like_mlflow(
    mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    result = import_mlflow_model(mlflow_models / "onnx", tmp_path / "iris-onnx", name="iris-onnx")

    manifest = result.manifest
    assert manifest.flavor == "onnx" and manifest.name == "iris-onnx"
    assert manifest.signature.inputs.names == ["X"]
    assert manifest.signature.inputs.specs[0].shape == (-1, 4)
    predictions = quayside.load_model(tmp_path / "iris-onnx").predict({"X": iris_rows.to_numpy(np.float32)})
    expected = mlflow_predictions["onnx"]
    assert set(predictions) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(predictions[name], np.asarray(values, dtype=predictions[name].dtype))


def test_a_pickled_mlflow_model_is_refused_without_trust_and_imports_with_it(
    mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    with pytest.raises(UntrustedPackageError, match=r"pickle .* --trust"):
        import_mlflow_model(mlflow_models / "sklearn-pickle", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()

    import_mlflow_model(mlflow_models / "sklearn-pickle", tmp_path / "trusted", trust=True, to_onnx=False)
    loaded = quayside.load_model(tmp_path / "trusted", trust=True)
    assert loaded.runtime == "native"
    np.testing.assert_array_equal(
        loaded.predict(iris_rows)["label"], mlflow_predictions["sklearn-pickle"]["label"]
    )


def test_a_directory_without_mlmodel_is_not_an_mlflow_model(tmp_path):
    with pytest.raises(UsageError, match="not an MLflow model directory"):
        import_mlflow_model(tmp_path, tmp_path / "out")


def test_an_unsupported_flavor_is_named(tmp_path):
    source = tmp_path / "spark-model"
    source.mkdir()
    (source / "MLmodel").write_text("flavors:\n  spark:\n    model_data: sparkml\n")
    with pytest.raises(UsageError, match=r"flavors \(spark\) are not ones Quayside imports"):
        import_mlflow_model(source, tmp_path / "out")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QUAYSIDE, *args], capture_output=True, text=True, timeout=300)


def test_the_cli_imports_converts_and_prints_one_line_errors(mlflow_models, tmp_path):
    imported = _cli(
        "import", "mlflow", str(mlflow_models / "sklearn-skops"), "--output", str(tmp_path / "pkg")
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported sklearn-skops (sklearn → sklearn)" in imported.stdout
    assert "ONNX parity" in imported.stdout
    assert quayside.load_model(tmp_path / "pkg").runtime == "onnx"

    refused = _cli("import", "mlflow", str(mlflow_models / "sklearn-pickle"), "-o", str(tmp_path / "no"))
    assert refused.returncode == 1
    error_lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "--trust" in error_lines[0] and "runs code" in error_lines[0]

    not_mlflow = _cli("import", "mlflow", str(tmp_path), "-o", str(tmp_path / "no"))
    assert not_mlflow.returncode == 1 and "has no MLmodel file" in not_mlflow.stderr

    native = _cli(
        "import",
        "mlflow",
        str(mlflow_models / "sklearn-pickle"),
        "--trust",
        "--no-onnx",
        "-o",
        str(tmp_path / "n"),
    )
    assert native.returncode == 0, native.stderr
    assert not quayside.load_model(tmp_path / "n", trust=True).manifest.onnx_servable
