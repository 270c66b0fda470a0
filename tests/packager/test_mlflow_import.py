"""``quayside import mlflow``: models saved by the real MLflow import, convert and predict as MLflow's own load does.

The MLflow side (saving, and MLflow's predictions) runs in MLflow's venv
(tests/packager/data/mlflow_save.py); the import runs here, without MLflow, except for
custom pyfunc models: unpickling a ``PythonModel`` imports mlflow (its base class), so
their import and the package's predictions run in the MLflow venv, which holds this
checkout of Quayside (tests/packager/data/mlflow_pyfunc_import.py), and this venv checks
what it reports and that the same package, where mlflow is missing, fails with a
message that says to install it.
Tolerances: the native model must answer exactly as MLflow's load of it (the same
library version on both sides, tests/venvs.py); an ONNX conversion within the parity
tolerance it was checked with (rtol 1e-4, atol 1e-5; labels exactly); an ONNX model
exactly (the same graph on the same ONNX Runtime version).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import quayside
from quayside.errors import PackageError, UntrustedPackageError, UsageError
from quayside.packager.golden import check_outputs
from quayside.packager.importers.mlflow import import_mlflow_model
from quayside.packager.manifest import read_manifest
from tests.venvs import ROOT

DATA = Path(__file__).parent / "data"
SCRIPT = DATA / "mlflow_save.py"
PYFUNC_IMPORT = DATA / "mlflow_pyfunc_import.py"
QUAYSIDE = str(Path(sys.executable).parent / "quayside")
# The module of the PyTorch model's class (tests/packager/data/iris_net.py), as MLflow pickled it.
TORCH_CLASS_MODULE = "iris_net"
PARITY = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture(scope="module")
def mlflow_models(mlflow_venv, tmp_path_factory) -> Path:
    """MLflow model directories saved by MLflow itself, and MLflow's predictions for them."""
    out = tmp_path_factory.mktemp("mlflow-models")
    X, y = load_iris(return_X_y=True)
    onnx_classifier = LogisticRegression(max_iter=1000).fit(X.astype(np.float32), y)
    graph = to_onnx(onnx_classifier, X[:1].astype(np.float32), options={"zipmap": False})
    (out / "iris.onnx").write_bytes(graph.SerializeToString())
    # Two processes, about even: each save infers its requirements in a subprocess of its own.
    groups = (("sklearn", "lightgbm"), ("xgboost", "pytorch", "pyfunc"))
    with ThreadPoolExecutor(len(groups)) as pool:
        runs = [
            pool.submit(mlflow_venv.run, str(SCRIPT), str(out), str(out / "iris.onnx"), *g, cwd=out)
            for g in groups
        ]
        for run in runs:
            run.result()
    return out


@pytest.fixture(scope="module")
def mlflow_predictions(mlflow_models: Path) -> dict:
    return {
        path.stem: json.loads(path.read_text()) for path in (mlflow_models / "predictions").glob("*.json")
    }


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


def _assert_classifier_predicts_like_mlflow(package: Path, expected: dict, rows) -> None:
    """The ONNX model within parity of MLflow's probabilities and on its labels; the native one exactly."""
    onnx = quayside.load_model(package)
    assert onnx.runtime == "onnx"
    predictions = onnx.predict(rows)
    np.testing.assert_array_equal(predictions["label"], expected["label"])
    np.testing.assert_allclose(predictions["probabilities"], expected["probabilities"], **PARITY)

    native = quayside.load_model(package, trust=True, runtime="native").predict(rows)
    np.testing.assert_array_equal(native["label"], expected["label"])
    probabilities = np.asarray(expected["probabilities"], dtype=native["probabilities"].dtype)
    np.testing.assert_array_equal(native["probabilities"], probabilities)


@pytest.mark.parametrize(
    ("name", "flavor"),
    [("xgboost-classifier", "xgboost"), ("lightgbm-classifier", "lightgbm")],
    ids=["XGBClassifier-ubj", "LGBMClassifier-skops"],
)
def test_an_mlflow_boosted_classifier_in_mlflows_default_format_imports_without_trust_converts_and_predicts_like_mlflow(
    name, flavor, mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    result = import_mlflow_model(mlflow_models / name, tmp_path / name)

    manifest = result.manifest
    assert result.mlflow_flavor == flavor and manifest.flavor == flavor
    assert result.onnx_error is None and manifest.onnx_servable and manifest.onnx.parity["passed"]
    assert manifest.signature.inputs.names == list(iris_rows.columns)
    assert manifest.signature.outputs.names == ["label", "probabilities"]
    assert any(r.startswith(f"{flavor}==") for r in manifest.environment.requirements)
    assert not any(r.startswith("mlflow") for r in manifest.environment.requirements)
    _assert_classifier_predicts_like_mlflow(tmp_path / name, mlflow_predictions[name], iris_rows)


def test_an_mlflow_lightgbm_classifier_pickle_is_refused_without_trust_and_imports_with_it(
    mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    source = mlflow_models / "lightgbm-classifier-pickle"
    with pytest.raises(UntrustedPackageError, match=r"LightGBM .* pickle .* --trust"):
        import_mlflow_model(source, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()

    result = import_mlflow_model(source, tmp_path / "trusted", trust=True)

    assert result.manifest.flavor == "lightgbm" and result.manifest.onnx_servable
    expected = mlflow_predictions["lightgbm-classifier-pickle"]
    _assert_classifier_predicts_like_mlflow(tmp_path / "trusted", expected, iris_rows)


BOOSTERS = pytest.mark.parametrize(
    ("name", "flavor"),
    [("xgboost-booster", "xgboost"), ("lightgbm-booster", "lightgbm")],
    ids=["xgboost", "lightgbm"],
)


@BOOSTERS
def test_an_mlflow_multiclass_booster_imports_without_trust_and_predicts_exactly_like_mlflow(
    name, flavor, mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    result = import_mlflow_model(mlflow_models / name, tmp_path / name)

    manifest = result.manifest
    assert result.mlflow_flavor == flavor and manifest.flavor == flavor
    assert manifest.onnx_servable and result.onnx_error is None
    assert manifest.signature.outputs.names == ["prediction"]
    assert manifest.signature.outputs.specs[0].shape == (-1, 3)
    predictions = quayside.load_model(tmp_path / name, runtime="native").predict(iris_rows)["prediction"]
    expected = np.asarray(mlflow_predictions[name]["prediction"], dtype=predictions.dtype)
    np.testing.assert_array_equal(predictions, expected)


@BOOSTERS
def test_an_mlflow_multiclass_booster_converts_to_onnx_within_parity_of_mlflow(
    name, flavor, mlflow_models, mlflow_predictions, iris_rows, tmp_path
):
    result = import_mlflow_model(mlflow_models / name, tmp_path / name)

    assert result.onnx_error is None and result.manifest.onnx_servable
    predictions = quayside.load_model(tmp_path / name).predict(iris_rows)["prediction"]
    np.testing.assert_allclose(predictions, mlflow_predictions[name]["prediction"], **PARITY)


def _assert_torch_predicts_like_mlflow(package: Path, expected: dict, features: np.ndarray) -> None:
    """MLflow's two loaders agree; the ONNX export within parity of them, the native module exactly."""
    pyfunc = np.asarray(expected["pyfunc"], dtype=np.float32)
    np.testing.assert_array_equal(pyfunc, np.asarray(expected["module"], dtype=np.float32))
    onnx = quayside.load_model(package)
    assert onnx.runtime == "onnx"
    np.testing.assert_allclose(onnx.predict({"input": features})["output"], pyfunc, **PARITY)
    native = quayside.load_model(package, trust=True, runtime="native").predict({"input": features})
    np.testing.assert_array_equal(native["output"], pyfunc)


def test_an_mlflow_pytorch_module_is_refused_without_trust_and_without_its_class_says_where_the_code_is(
    mlflow_models, tmp_path, monkeypatch
):
    source = mlflow_models / "pytorch-pickle"
    monkeypatch.delitem(sys.modules, TORCH_CLASS_MODULE, raising=False)
    with pytest.raises(UntrustedPackageError, match=r"PyTorch module .* pickle .* --trust"):
        import_mlflow_model(source, tmp_path / "refused")

    with pytest.raises(PackageError, match=rf"Python module '{TORCH_CLASS_MODULE}'.*PYTHONPATH") as missing:
        import_mlflow_model(source, tmp_path / "no-class", trust=True)
    assert str(source / "code") in missing.value.message  # MLflow's copy of code_paths
    assert not (tmp_path / "refused").exists() and not (tmp_path / "no-class").exists()


def test_an_mlflow_pytorch_module_imports_with_trust_converts_to_onnx_and_predicts_like_mlflow(
    mlflow_models, mlflow_predictions, iris_rows, tmp_path, monkeypatch
):
    # MLflow pickled the module's class by reference to iris_net, importable beside mlflow_save.py.
    monkeypatch.syspath_prepend(str(DATA))
    result = import_mlflow_model(mlflow_models / "pytorch-pickle", tmp_path / "net", trust=True)

    manifest = result.manifest
    assert result.mlflow_flavor == "pytorch" and manifest.flavor == "pytorch"
    assert result.onnx_error is None and manifest.onnx_servable and manifest.onnx.parity["passed"]
    inputs = manifest.signature.inputs
    assert inputs.kind == "tensors" and inputs.names == ["input"]
    assert (inputs.specs[0].dtype, inputs.specs[0].shape) == ("float32", (-1, 4))
    assert any(r.startswith("torch==2.13.0") for r in manifest.environment.requirements)
    expected = mlflow_predictions["pytorch-pickle"]
    _assert_torch_predicts_like_mlflow(tmp_path / "net", expected, iris_rows.to_numpy(np.float32))


def test_mlflows_default_pytorch_format_pt2_needs_trust_and_imports_without_the_modules_class(
    mlflow_models, mlflow_predictions, iris_rows, tmp_path, monkeypatch
):
    source = mlflow_models / "pytorch-pt2"
    assert (source / "data" / "model.pt2").is_file() and not (source / "data" / "model.pth").exists()
    monkeypatch.delitem(sys.modules, TORCH_CLASS_MODULE, raising=False)
    with pytest.raises(UntrustedPackageError, match=r"torch\.export pt2 .* --trust"):
        import_mlflow_model(source, tmp_path / "refused")

    result = import_mlflow_model(source, tmp_path / "program", trust=True)

    assert TORCH_CLASS_MODULE not in sys.modules  # the exported program runs without its Python class
    manifest = result.manifest
    assert manifest.flavor == "pytorch" and result.onnx_error is None and manifest.onnx.parity["passed"]
    expected = mlflow_predictions["pytorch-pt2"]
    _assert_torch_predicts_like_mlflow(tmp_path / "program", expected, iris_rows.to_numpy(np.float32))


@pytest.fixture(scope="module")
def pyfunc_packages(mlflow_venv, mlflow_models, tmp_path_factory) -> tuple[Path, dict]:
    """The custom pyfunc models imported, loaded and run by Quayside inside the MLflow venv."""
    packages = tmp_path_factory.mktemp("pyfunc-packages")
    names = ("pyfunc", "pyfunc-lzma")
    result = mlflow_venv.run(str(PYFUNC_IMPORT), str(mlflow_models), str(packages), *names)
    return packages, json.loads(result.stdout.strip().splitlines()[-1])


def test_an_mlflow_custom_pyfunc_is_refused_without_trust_and_names_mlflow_where_it_is_missing(
    mlflow_models, tmp_path
):
    assert importlib.util.find_spec("mlflow") is None  # never in the dev venv (tests/venvs.py)
    with pytest.raises(UntrustedPackageError, match=r"custom pyfunc model .* pickle .* --trust"):
        import_mlflow_model(mlflow_models / "pyfunc", tmp_path / "refused")

    with pytest.raises(PackageError, match=r"Python module 'mlflow'.*install mlflow==3\.\d+\.\d+"):
        import_mlflow_model(mlflow_models / "pyfunc", tmp_path / "no-mlflow", trust=True)
    assert not (tmp_path / "refused").exists() and not (tmp_path / "no-mlflow").exists()


@pytest.mark.parametrize("name", ["pyfunc", "pyfunc-lzma"])
def test_an_mlflow_custom_pyfunc_imports_with_trust_as_a_python_package_that_predicts_exactly_like_mlflow(
    name, pyfunc_packages, mlflow_predictions, iris_rows
):
    packages, report = pyfunc_packages
    assert Path(report["quayside"]).is_relative_to(ROOT / "src")  # this checkout, not a stale copy
    imported = report["models"][name]
    assert imported["mlflow_flavor"] == "python_function" and imported["onnx_error"] is None

    manifest = read_manifest(packages / name)
    assert manifest.flavor == "python" and manifest.onnx is None
    assert manifest.signature.inputs.names == list(iris_rows.columns)
    assert manifest.signature.outputs.names == ["area", "wide"]
    # The package loads only where mlflow does: its requirements keep MLflow's pin.
    assert any(r.startswith("mlflow==") for r in manifest.environment.requirements)
    # model_config reached load_context (scale) and predict's context (wide_above).
    assert imported["predictions"] == mlflow_predictions[name]
    assert 0 < sum(imported["predictions"]["wide"]) < len(iris_rows)


def test_an_imported_pyfunc_package_loaded_where_mlflow_is_missing_says_to_install_its_requirements(
    pyfunc_packages,
):
    packages, _ = pyfunc_packages
    with pytest.raises(UntrustedPackageError):
        quayside.load_model(packages / "pyfunc")
    with pytest.raises(PackageError, match=r"Python module 'mlflow'.*install the package's requirements"):
        quayside.load_model(packages / "pyfunc", trust=True)


def test_an_mlflow_pyfunc_defined_by_code_is_named_as_not_importable(tmp_path):
    source = tmp_path / "from-code"
    source.mkdir()
    (source / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    model_code_path: agent.py\n"
    )
    with pytest.raises(UsageError, match=r"defined by code \('agent\.py', MLflow's models from code\)"):
        import_mlflow_model(source, tmp_path / "out", trust=True)


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


def test_import_mlflow_records_the_native_models_answers_to_mlflows_example(mlflow_models, tmp_path):
    result = import_mlflow_model(mlflow_models / "sklearn-skops", tmp_path / "iris")

    manifest = read_manifest(tmp_path / "iris")
    assert manifest.golden == result.manifest.golden and manifest.golden_missing is None
    golden = manifest.golden_outputs()
    # MLflow's own load of the model, on all 150 rows; the example is the first 10.
    mlflow = json.loads((mlflow_models / "predictions" / "sklearn-skops.json").read_text())
    np.testing.assert_array_equal(golden["label"], mlflow["label"][:10])
    np.testing.assert_array_equal(golden["probabilities"], np.asarray(mlflow["probabilities"][:10]))
    assert manifest.onnx_servable
    answers = quayside.load_model(tmp_path / "iris").predict(manifest.input_example)
    assert check_outputs(golden, answers, manifest.parity_tolerance()) == []
