"""ONNX conversion: parity is measured and recorded, and a conversion that breaks it is refused."""

from __future__ import annotations

import numpy as np
import pytest

from quayside import Schema, Signature, TensorSpec, Tolerance, convert_package, load_model, save_model
from quayside.errors import ConversionError, ParityError, SignatureError, UntrustedPackageError, UsageError
from quayside.packager.manifest import MANIFEST_NAME, PackageReader


def test_parity_is_measured_on_the_example_plus_sampled_rows_and_recorded(tmp_path, iris_classifier, iris):
    manifest = save_model(iris_classifier, tmp_path / "m", input_example=iris[0].head(20), to_onnx=True)
    assert manifest.onnx is not None and manifest.onnx_servable
    parity = manifest.onnx.parity
    assert parity["rows"] == 20 + 1000
    assert parity["rtol"] == 1e-4 and parity["atol"] == 1e-5
    assert parity["outputs"]["label"] == {"label_agreement": 1.0, "passed": True}
    probabilities = parity["outputs"]["probabilities"]
    # float32 inside ONNX Runtime against float64 in scikit-learn: close, but not equal.
    assert 0 < probabilities["max_abs_diff"] < 1e-5
    assert probabilities["max_rel_diff"] > 0


def test_zero_tolerance_on_a_float_model_is_refused_and_nothing_is_written(
    tmp_path, diabetes_regressor, diabetes
):
    X, _ = diabetes
    with pytest.raises(ParityError) as refused:
        save_model(
            diabetes_regressor,
            tmp_path / "m",
            input_example=X[:20],
            to_onnx=True,
            tolerance=Tolerance(rtol=0, atol=0),
        )
    message = refused.value.message
    assert "output 'prediction': max abs diff" in message
    assert "exceed the tolerance (rtol=0, atol=0)" in message
    assert list(tmp_path.iterdir()) == []


def test_convert_package_adds_onnx_in_place(tmp_path, iris_classifier, iris):
    save_model(iris_classifier, tmp_path / "m", input_example=iris[0].head(20))
    assert load_model(tmp_path / "m", trust=True).runtime == "native"
    manifest = convert_package(tmp_path / "m", trust=True)
    assert manifest.onnx_servable
    reader = PackageReader.open(tmp_path / "m")
    assert reader.manifest.digest() == manifest.digest()
    assert any(r.startswith("onnxruntime==") for r in reader.manifest.environment.onnx_requirements)
    assert load_model(tmp_path / "m").runtime == "onnx"


def test_a_failed_conversion_leaves_the_package_unchanged(tmp_path, diabetes_regressor, diabetes):
    save_model(diabetes_regressor, tmp_path / "m", input_example=diabetes[0][:20])
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    with pytest.raises(ParityError):
        convert_package(tmp_path / "m", trust=True, tolerance=Tolerance(rtol=0, atol=0))
    after = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    assert after == before


def test_converting_a_pickled_package_needs_trust(tmp_path, iris_classifier, iris):
    save_model(iris_classifier, tmp_path / "m", input_example=iris[0].head())
    with pytest.raises(UntrustedPackageError):
        convert_package(tmp_path / "m")


def test_python_models_cannot_be_converted(tmp_path):
    class Identity:
        def predict(self, x):
            return x

    with pytest.raises(ConversionError, match="plain Python models cannot be converted"):
        save_model(Identity(), tmp_path / "m", input_example=np.ones((3, 2)), to_onnx=True)
    assert not (tmp_path / "m").exists()


def test_conversion_needs_an_input_example(tmp_path, iris_classifier, iris):
    manifest = save_model(iris_classifier, tmp_path / "a", input_example=iris[0].head())
    with pytest.raises(UsageError, match="to_onnx=True needs input_example"):
        save_model(iris_classifier, tmp_path / "b", signature=manifest.signature, to_onnx=True)


def test_saving_needs_an_example_or_a_signature(tmp_path, iris_classifier):
    with pytest.raises(UsageError, match="needs input_example"):
        save_model(iris_classifier, tmp_path / "m")


def test_a_given_signature_must_match_the_model_outputs(tmp_path, iris_classifier, iris):
    inputs = save_model(iris_classifier, tmp_path / "c", input_example=iris[0].head()).signature.inputs
    outputs = Schema("tensors", (TensorSpec("prediction", "float64", (-1,)),))
    mixed = Signature(inputs, outputs)
    with pytest.raises(SignatureError, match="outputs do not match the given signature"):
        save_model(iris_classifier, tmp_path / "m", signature=mixed, input_example=iris[0].head())


def test_the_manifest_on_disk_lists_the_onnx_file(tmp_path, iris_classifier, iris):
    save_model(iris_classifier, tmp_path / "m", input_example=iris[0].head(10), to_onnx=True)
    assert "model.onnx" in (tmp_path / "m" / MANIFEST_NAME).read_text()
