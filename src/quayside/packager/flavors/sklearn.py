"""The scikit-learn flavor: estimators and pipelines, pickled with cloudpickle, converted with skl2onnx.

Unpickling runs code, so loading the native model needs trust; the ONNX model
converted from it does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from quayside.errors import ConversionError, PackageError
from quayside.packager.flavors.base import (
    Options,
    as_frame,
    as_matrix,
    classifier_outputs,
    float_tensor_type,
    import_extra,
    is_instance_by_name,
    matrix_initial_types,
)
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Arrays, Schema, Signature

MODEL_FILE = "model.pkl"


def estimator_input(model: Any, inputs: Arrays, schema: Schema) -> Any:
    """What a scikit-learn-style ``predict`` expects: a DataFrame if it was fitted on one."""
    if schema.kind == "table" and hasattr(model, "feature_names_in_"):
        return as_frame(inputs, schema)
    return as_matrix(inputs, schema)


def is_classifier(model: Any) -> bool:
    return hasattr(model, "predict_proba") and hasattr(model, "classes_")


def estimator_requirements(framework: str, model: Any) -> list[str]:
    """What a scikit-learn-style estimator needs to load; pandas if it was fitted on a DataFrame."""
    return [framework, "numpy", "scikit-learn"] + (["pandas"] if hasattr(model, "feature_names_in_") else [])


def predict_estimator(model: Any, inputs: Arrays, schema: Schema) -> Arrays:
    """``label`` and ``probabilities`` for a classifier, ``prediction`` for anything else."""
    features = estimator_input(model, inputs, schema)
    if is_classifier(model):
        return classifier_outputs(model.predict(features), model.predict_proba(features))
    return {"prediction": np.asarray(model.predict(features))}


class SklearnFlavor:
    """scikit-learn estimators and pipelines."""

    name: ClassVar[str] = "sklearn"
    trust_required: ClassVar[bool] = True

    def matches(self, model: Any) -> bool:
        return is_instance_by_name(model, "sklearn.base", ("BaseEstimator",))

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        return estimator_requirements("cloudpickle", model)

    def own_signature(self, model: Any) -> Signature | None:
        return None

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        import cloudpickle

        if not hasattr(model, "predict"):
            raise PackageError(f"{type(model).__name__} has no predict(); only predictors can be saved")
        (root / MODEL_FILE).write_bytes(cloudpickle.dumps(model))
        return [MODEL_FILE], {"model_class": f"{type(model).__module__}.{type(model).__name__}"}

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> Any:
        import cloudpickle

        import_extra("sklearn", "sklearn", "loading scikit-learn models")
        return cloudpickle.loads(reader.read_bytes(MODEL_FILE))

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        return predict_estimator(model, inputs, schema)

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        skl2onnx = import_extra("skl2onnx", "sklearn", "converting scikit-learn models to ONNX")
        data_types = import_extra("skl2onnx.common.data_types", "sklearn")
        converter_options = {"zipmap": False} if is_classifier(model) else None
        errors = []
        for initial_types in _input_layouts(inputs, data_types):
            try:
                return skl2onnx.to_onnx(
                    model, initial_types=initial_types, target_opset=opset, options=converter_options
                )
            except (RuntimeError, NotImplementedError, TypeError, ValueError) as e:
                errors.append(str(e).splitlines()[0])
        raise ConversionError(f"skl2onnx cannot convert {type(model).__name__}: {'; '.join(errors)}")


def _input_layouts(inputs: Schema, data_types: Any) -> list[list[tuple[str, Any]]]:
    """Graph input layouts to try, best first.

    A numeric table is tried as one feature matrix (what plain estimators take)
    before one input per column (what a ColumnTransformer selecting columns by
    name needs); mixed-type tables can only be per column.
    """
    if inputs.kind == "tensors":
        spec = inputs.specs[0]
        return [[(spec.name, float_tensor_type(spec.dtype, [None, *spec.shape[1:]], data_types))]]
    per_column = [(s.name, float_tensor_type(s.dtype, [None, 1], data_types)) for s in inputs.specs]
    if all(s.dtype_info.numpy.kind in "iuf" for s in inputs.specs):
        return [matrix_initial_types(inputs, data_types), per_column]
    return [per_column]
