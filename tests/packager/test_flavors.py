"""Every flavor: save → load gives the same predictions; ONNX conversion keeps them within tolerance."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest
import torch
import xgboost
from lightgbm import LGBMClassifier, LGBMRegressor

from quayside import load_model, save_model
from quayside.errors import UntrustedPackageError

RTOL, ATOL = 1e-4, 1e-5


class Doubler:
    """A plain Python model: a table in, a named output out."""

    def predict(self, frame):
        return {"doubled": frame["x"].to_numpy() * 2.0, "count": np.full(len(frame), len(frame))}


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    def forward(self, x):
        return torch.softmax(self.layers(x), dim=1)


def _assert_same(actual: dict, expected: dict) -> None:
    assert list(actual) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def _assert_within_parity(onnx: dict, native: dict) -> None:
    assert list(onnx) == list(native)
    for name, value in native.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(onnx[name], value, rtol=RTOL, atol=ATOL, err_msg=name)
        else:
            np.testing.assert_array_equal(onnx[name], value, err_msg=name)


def test_sklearn_classifier_round_trip_and_onnx_parity(tmp_path, iris_classifier, iris):
    X, _ = iris
    save_model(iris_classifier, tmp_path / "m", input_example=X.sample(20, random_state=0), to_onnx=True)
    native = load_model(tmp_path / "m", trust=True, runtime="native").predict(X)
    _assert_same(
        native, {"label": iris_classifier.predict(X), "probabilities": iris_classifier.predict_proba(X)}
    )
    onnx = load_model(tmp_path / "m")
    assert onnx.runtime == "onnx"
    _assert_within_parity(onnx.predict(X), native)


def test_sklearn_regressor_on_arrays(tmp_path, diabetes_regressor, diabetes):
    X, _ = diabetes
    manifest = save_model(diabetes_regressor, tmp_path / "m", input_example=X[:30], to_onnx=True)
    assert manifest.signature.inputs.specs[0].shape == (-1, 10)
    native = load_model(tmp_path / "m", trust=True, runtime="native").predict(X)
    _assert_same(native, {"prediction": diabetes_regressor.predict(X)})
    _assert_within_parity(load_model(tmp_path / "m").predict(X), native)


def test_sklearn_pipeline_with_string_and_int_columns(tmp_path, mixed_pipeline):
    model, X = mixed_pipeline
    manifest = save_model(model, tmp_path / "m", input_example=X.head(50), to_onnx=True)
    assert [s.dtype for s in manifest.signature.inputs.specs] == ["float64", "int64", "string"]
    native = load_model(tmp_path / "m", trust=True, runtime="native").predict(X)
    _assert_same(native, {"label": model.predict(X), "probabilities": model.predict_proba(X)})
    _assert_within_parity(load_model(tmp_path / "m").predict(X), native)


def test_xgboost_classifier_loads_without_trust(tmp_path, iris):
    X, y = iris
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    save_model(model, tmp_path / "m", input_example=X.head(40), to_onnx=True)
    native = load_model(tmp_path / "m", runtime="native").predict(X)
    _assert_same(native, {"label": model.predict(X), "probabilities": model.predict_proba(X)})
    _assert_within_parity(load_model(tmp_path / "m").predict(X), native)


def test_xgboost_regressor(tmp_path, diabetes):
    X, y = diabetes
    model = xgboost.XGBRegressor(n_estimators=20).fit(X, y)
    save_model(model, tmp_path / "m", input_example=X[:40], to_onnx=True)
    native = load_model(tmp_path / "m", runtime="native").predict(X)
    _assert_same(native, {"prediction": model.predict(X)})
    _assert_within_parity(load_model(tmp_path / "m").predict(X), native)


def test_lightgbm_classifier_keeps_string_labels(tmp_path, iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = LGBMClassifier(n_estimators=20, verbose=-1).fit(X.to_numpy(), labels)
    save_model(model, tmp_path / "m", input_example=X.to_numpy()[::5], to_onnx=True)
    native = load_model(tmp_path / "m", runtime="native").predict(X.to_numpy())
    _assert_same(
        native,
        {
            "label": model.predict(X.to_numpy()).astype(object),
            "probabilities": model.predict_proba(X.to_numpy()),
        },
    )
    _assert_within_parity(load_model(tmp_path / "m").predict(X.to_numpy()), native)


def test_lightgbm_regressor(tmp_path, diabetes):
    X, y = diabetes
    model = LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y)
    save_model(model, tmp_path / "m", input_example=X[:40], to_onnx=True)
    native = load_model(tmp_path / "m", runtime="native").predict(X)
    _assert_same(native, {"prediction": model.predict(X)})
    _assert_within_parity(load_model(tmp_path / "m").predict(X), native)


def _train_booster(library: str, X: np.ndarray, y: np.ndarray, classes: int):
    if library == "xgboost":
        params = {"objective": "binary:logistic"} if classes == 2 else {"objective": "multi:softprob"}
        params |= {"num_class": classes} if classes > 2 else {}
        return xgboost.train(params, xgboost.DMatrix(X, y), num_boost_round=15)
    params = {"objective": "binary", "verbose": -1} if classes == 2 else {"objective": "multiclass"}
    params |= {"num_class": classes, "verbose": -1} if classes > 2 else {}
    return lightgbm.train(params, lightgbm.Dataset(X, y), num_boost_round=15)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("classes", [2, 3])
def test_classifying_boosters_convert_to_onnx_answering_what_booster_predict_answers(
    tmp_path, library, classes
):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5][: classes - 1])
    booster = _train_booster(library, X, y, classes)
    manifest = save_model(booster, tmp_path / "m", input_example=X[:40], to_onnx=True)
    assert manifest.onnx_servable
    expected_shape = (-1,) if classes == 2 else (-1, classes)
    assert [(s.name, s.shape) for s in manifest.signature.outputs.specs] == [("prediction", expected_shape)]
    native = load_model(tmp_path / "m", runtime="native").predict(X)
    onnx = load_model(tmp_path / "m")
    assert onnx.runtime == "onnx"
    _assert_within_parity(onnx.predict(X), native)


def test_pytorch_module_round_trip_and_onnx_export(tmp_path, iris):
    X = iris[0].to_numpy(dtype=np.float32, copy=True)
    model = TinyNet().eval()
    manifest = save_model(model, tmp_path / "m", input_example=X[:16], to_onnx=True)
    assert manifest.signature.outputs.specs[0].shape == (-1, 3)
    native = load_model(tmp_path / "m", trust=True, runtime="native").predict(X)
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    _assert_same(native, {"output": expected})
    _assert_within_parity(load_model(tmp_path / "m").predict(X), native)


def test_python_model_round_trip(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.5, -3.0]})
    save_model(Doubler(), tmp_path / "m", input_example=frame)
    result = load_model(tmp_path / "m", trust=True).predict(frame)
    _assert_same(result, {"doubled": np.array([2.0, 5.0, -6.0]), "count": np.array([3, 3, 3])})


def test_onnx_model_round_trip_needs_no_trust_and_takes_its_signature_from_the_graph(
    tmp_path, iris, iris_classifier
):
    from skl2onnx import to_onnx

    X = iris[0].to_numpy(dtype=np.float32)
    graph = to_onnx(iris_classifier, X[:1], options={"zipmap": False})
    manifest = save_model(graph, tmp_path / "m")
    assert manifest.flavor == "onnx"
    assert manifest.signature.inputs.specs[0].shape == (-1, 4)
    assert manifest.signature.outputs.names == ["label", "probabilities"]
    result = load_model(tmp_path / "m").predict(X)
    np.testing.assert_array_equal(result["label"], iris_classifier.predict(iris[0]))
    np.testing.assert_allclose(
        result["probabilities"], iris_classifier.predict_proba(iris[0]), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("flavor_model", ["sklearn", "pytorch", "python"])
def test_pickled_flavors_are_refused_without_trust(tmp_path, flavor_model, iris_classifier, iris):
    X = iris[0]
    model, example = {
        "sklearn": (iris_classifier, X.head()),
        "pytorch": (TinyNet(), X.to_numpy(np.float32)[:4]),
        "python": (Doubler(), X.rename(columns={X.columns[0]: "x"})[["x"]].head()),
    }[flavor_model]
    save_model(model, tmp_path / "m", input_example=example)
    with pytest.raises(UntrustedPackageError, match=r"unpickling runs code from the package.*trust=True"):
        load_model(tmp_path / "m")


def test_an_onnx_servable_package_loads_without_trust_but_its_pickle_does_not(
    tmp_path, iris_classifier, iris
):
    save_model(iris_classifier, tmp_path / "m", input_example=iris[0].head(), to_onnx=True)
    assert load_model(tmp_path / "m").runtime == "onnx"
    with pytest.raises(UntrustedPackageError, match="loads without trust"):
        load_model(tmp_path / "m", runtime="native")


def test_sklearn_classifier_with_string_labels_keeps_them_through_onnx(tmp_path, iris):
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, labels)
    manifest = save_model(model, tmp_path / "m", input_example=X.sample(30, random_state=1), to_onnx=True)
    assert manifest.signature.outputs["label"].dtype == "string"
    onnx = load_model(tmp_path / "m").predict(X)
    assert onnx["label"].tolist() == model.predict(X).tolist()
