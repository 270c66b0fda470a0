"""The line every MLflow user writes works: ``signature=infer_signature(X, model.predict(X))``.

Flavors name their outputs (a classifier answers ``label`` and ``probabilities``,
a regressor ``prediction``); the idiom describes one unnamed output. Saving maps
it onto the output it matches and describes the rest from the model; anything
that does not match is refused with the outputs the model really produces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.datasets import load_breast_cancer

from quayside import convert_package, infer_signature, load_model, save_model
from quayside.errors import SignatureError
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import TensorSpec

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="module", params=["sklearn", "xgboost", "lightgbm"])
def classifier(request, iris, iris_classifier, breast_cancer):
    """A trained classifier and the features it takes: a DataFrame (sklearn) or arrays."""
    if request.param == "sklearn":
        return iris_classifier, iris[0]
    if request.param == "xgboost":
        X, y = breast_cancer
        return xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y), X
    X, y = iris
    return LGBMClassifier(n_estimators=20, verbose=-1).fit(X.to_numpy(), y.to_numpy()), X.to_numpy()


@pytest.fixture(scope="module", params=["sklearn", "xgboost", "lightgbm"])
def regressor(request, diabetes, diabetes_regressor):
    X, y = diabetes
    if request.param == "sklearn":
        return diabetes_regressor, X
    if request.param == "xgboost":
        return xgboost.XGBRegressor(n_estimators=20).fit(X, y), X
    return LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y), X


def _idiom_signature(model, X):
    return infer_signature(X, model.predict(X))


def _assert_classifier_outputs(manifest, model, X) -> None:
    label, probabilities = np.asarray(model.predict(X)), np.asarray(model.predict_proba(X))
    outputs = manifest.signature.outputs
    assert outputs.kind == "tensors"
    assert outputs.specs == (
        TensorSpec("label", label.dtype.name, (-1,)),
        TensorSpec("probabilities", probabilities.dtype.name, (-1, probabilities.shape[1])),
    )


def test_the_idiom_saves_a_classifier_with_its_named_outputs(tmp_path, classifier):
    model, X = classifier
    signature = _idiom_signature(model, X)
    assert signature.outputs.names == ["output"]
    manifest = save_model(model, tmp_path / "m", signature=signature, input_example=X[:5])
    assert manifest.signature.inputs == signature.inputs
    _assert_classifier_outputs(manifest, model, X)
    assert PackageReader.open(tmp_path / "m").manifest.signature == manifest.signature

    predicted = load_model(tmp_path / "m", trust=True).predict(X)
    assert list(predicted) == ["label", "probabilities"]
    np.testing.assert_array_equal(predicted["label"], model.predict(X))
    np.testing.assert_array_equal(predicted["probabilities"], model.predict_proba(X))


def test_the_idiom_saves_a_regressor_with_its_named_output(tmp_path, regressor):
    model, X = regressor
    expected = np.asarray(model.predict(X))
    manifest = save_model(model, tmp_path / "m", signature=_idiom_signature(model, X), input_example=X[:5])
    assert manifest.signature.outputs.specs == (TensorSpec("prediction", expected.dtype.name, (-1,)),)
    predicted = load_model(tmp_path / "m", trust=True).predict(X)
    assert list(predicted) == ["prediction"]
    np.testing.assert_array_equal(predicted["prediction"], expected)


def test_an_unnamed_series_of_labels_maps_too(tmp_path, iris, iris_classifier):
    X, _ = iris
    signature = infer_signature(X, pd.Series(iris_classifier.predict(X)))
    assert signature.outputs.kind == "table"
    manifest = save_model(iris_classifier, tmp_path / "m", signature=signature, input_example=X[:5])
    _assert_classifier_outputs(manifest, iris_classifier, X)


def test_the_mapped_signature_survives_conversion_to_onnx(tmp_path, classifier):
    model, X = classifier
    manifest = save_model(
        model, tmp_path / "m", signature=_idiom_signature(model, X), input_example=X[:20], to_onnx=True
    )
    assert manifest.onnx_servable
    _assert_classifier_outputs(manifest, model, X)
    assert set(manifest.onnx.parity["outputs"]) == {"label", "probabilities"}

    loaded = load_model(tmp_path / "m")
    assert loaded.runtime == "onnx"
    predicted = loaded.predict(X)
    assert list(predicted) == ["label", "probabilities"]
    np.testing.assert_array_equal(predicted["label"], model.predict(X))
    np.testing.assert_allclose(predicted["probabilities"], model.predict_proba(X), rtol=RTOL, atol=ATOL)


def test_converting_a_package_saved_with_the_idiom_keeps_its_outputs(tmp_path, regressor):
    model, X = regressor
    saved = save_model(model, tmp_path / "m", signature=_idiom_signature(model, X), input_example=X[:20])
    converted = convert_package(tmp_path / "m", trust=True)
    assert converted.onnx_servable
    assert converted.signature == saved.signature
    assert converted.signature.outputs.names == ["prediction"]
    predicted = load_model(tmp_path / "m").predict(X)
    np.testing.assert_allclose(predicted["prediction"], model.predict(X), rtol=RTOL, atol=ATOL)


def test_outputs_named_after_the_models_may_describe_some_and_leave_the_rest(tmp_path, iris, iris_classifier):
    X, _ = iris
    signature = infer_signature(X, {"label": iris_classifier.predict(X)})
    manifest = save_model(iris_classifier, tmp_path / "m", signature=signature, input_example=X[:5])
    _assert_classifier_outputs(manifest, iris_classifier, X)


def _refusal(tmp_path, model, signature, example) -> str:
    with pytest.raises(SignatureError) as raised:
        save_model(model, tmp_path / "m", signature=signature, input_example=example)
    assert not (tmp_path / "m").exists()
    return raised.value.message


def _assert_speaks_of_outputs(message: str) -> None:
    assert "output" in message
    assert "input 'output'" not in message
    assert "missing input" not in message
    assert "the model takes" not in message


def test_a_two_column_float32_output_for_a_classifier_is_refused_naming_its_real_outputs(
    tmp_path, iris, iris_classifier
):
    X, _ = iris
    signature = infer_signature(X, np.zeros((len(X), 2), dtype=np.float32))
    message = _refusal(tmp_path, iris_classifier, signature, X[:5])
    assert "output 'output' (float32 with shape (-1, 2)) matches none of the model's outputs" in message
    assert "label (int64 with shape (-1,)), probabilities (float64 with shape (-1, 3))" in message
    assert "infer_signature(X, {'label': ..., 'probabilities': ...})" in message
    assert "omit signature=" in message
    _assert_speaks_of_outputs(message)


def test_probabilities_in_the_wrong_dtype_are_refused(tmp_path, classifier):
    model, X = classifier
    proba = np.asarray(model.predict_proba(X))
    wrong = np.float64 if proba.dtype == np.float32 else np.float32
    message = _refusal(tmp_path, model, infer_signature(X, proba.astype(wrong)), X[:5])
    assert "matches none of the model's outputs by dtype and shape" in message
    assert "label (" in message and "probabilities (" in message
    _assert_speaks_of_outputs(message)


def test_labels_given_as_strings_for_integer_classes_are_refused(tmp_path, iris, iris_classifier):
    X, _ = iris
    signature = infer_signature(X, iris_classifier.predict(X).astype(str))
    message = _refusal(tmp_path, iris_classifier, signature, X[:5])
    assert "output 'output' (string with shape (-1,))" in message
    _assert_speaks_of_outputs(message)


def test_a_regressor_output_in_the_wrong_dtype_is_refused(tmp_path, diabetes, diabetes_regressor):
    X, _ = diabetes
    signature = infer_signature(X, diabetes_regressor.predict(X).astype(np.float32))
    message = _refusal(tmp_path, diabetes_regressor, signature, X[:5])
    assert "the model produces prediction (float64 with shape (-1,))" in message
    _assert_speaks_of_outputs(message)


def test_a_named_output_that_does_not_fit_is_refused_as_an_output(tmp_path, iris, iris_classifier):
    X, _ = iris
    signature = infer_signature(X, {"label": np.zeros((len(X), 2), dtype=np.int64)})
    message = _refusal(tmp_path, iris_classifier, signature, X[:5])
    assert "output 'label': expected int64 with shape (-1, 2), got shape (5,)" in message
    _assert_speaks_of_outputs(message)


def test_an_output_name_the_model_does_not_produce_is_refused(tmp_path, iris, iris_classifier):
    X, _ = iris
    signature = infer_signature(X, {"species": iris_classifier.predict(X)})
    message = _refusal(tmp_path, iris_classifier, signature, X[:5])
    assert "the model produces no output named 'species'" in message
    assert "label (int64 with shape (-1,))" in message
    _assert_speaks_of_outputs(message)


class TwoScores:
    """A plain Python model with two outputs of the same dtype and shape."""

    def predict(self, x):
        return {"low": x[:, 0] - 1.0, "high": x[:, 0] + 1.0}


def test_an_unnamed_output_that_matches_two_outputs_is_refused(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    message = _refusal(tmp_path, TwoScores(), infer_signature(X, X[:, 0]), X[:5])
    assert "matches more than one of the model's outputs (low, high)" in message
    _assert_speaks_of_outputs(message)


def test_inputs_are_checked_as_strictly_as_before(tmp_path, iris, iris_classifier):
    X, _ = iris
    signature = infer_signature(X.rename(columns=str.upper), iris_classifier.predict(X))
    with pytest.raises(SignatureError, match="missing columns"):
        save_model(iris_classifier, tmp_path / "m", signature=signature, input_example=X[:5])
    assert not (tmp_path / "m").exists()
