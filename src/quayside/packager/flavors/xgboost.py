"""The XGBoost flavor: boosters and their scikit-learn wrappers, saved in XGBoost's JSON format.

The JSON model format is data, not code, so loading needs no trust; the
wrapper class is restored from a fixed allow-list, never from the package.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from quayside.errors import ConversionError, PackageError
from quayside.packager.flavors.base import (
    Options,
    as_matrix,
    booster_probabilities_as_prediction,
    import_extra,
    is_instance_by_name,
    matrix_initial_types,
)
from quayside.packager.flavors.sklearn import estimator_requirements, predict_estimator
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Arrays, Schema, Signature

MODEL_FILE = "model.json"
MODEL_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor", "Booster")


class XGBoostFlavor:
    """XGBoost ``Booster`` and ``XGBClassifier``/``XGBRegressor`` models."""

    name: ClassVar[str] = "xgboost"
    trust_required: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        return is_instance_by_name(model, "xgboost", MODEL_CLASSES)

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        return estimator_requirements("xgboost", model)

    def own_signature(self, model: Any) -> Signature | None:
        return None

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        booster = model if type(model).__name__ == "Booster" else model.get_booster()
        # The wrapper's save_model also records its own attributes (classes, objective).
        target = model if type(model).__name__ != "Booster" else booster
        target.save_model(str(root / MODEL_FILE))
        return [MODEL_FILE], {"model_class": type(model).__name__, "features": booster.num_features()}

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> Any:
        xgboost = import_extra("xgboost", "xgboost", "loading XGBoost models")
        class_name = options.get("model_class")
        if class_name not in MODEL_CLASSES:
            raise PackageError(f"unknown XGBoost model class {class_name!r}")
        model = getattr(xgboost, class_name)()
        model.load_model(bytearray(reader.read_bytes(MODEL_FILE)))
        return model

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        if type(model).__name__ == "Booster":
            xgboost = import_extra("xgboost", "xgboost")
            matrix = xgboost.DMatrix(as_matrix(inputs, schema), feature_names=model.feature_names)
            return {"prediction": np.asarray(model.predict(matrix))}
        return predict_estimator(model, inputs, schema)

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        onnxmltools = import_extra("onnxmltools", "xgboost", "converting XGBoost models to ONNX")
        data_types = import_extra("onnxmltools.convert.common.data_types", "xgboost")
        # The converter reads split features as f0, f1, ...: drop the names on a copy.
        unnamed = copy.deepcopy(model)
        booster = unnamed if type(unnamed).__name__ == "Booster" else unnamed.get_booster()
        booster.feature_names = None
        try:
            graph = onnxmltools.convert_xgboost(
                unnamed, initial_types=matrix_initial_types(inputs, data_types), target_opset=opset
            )
        except (RuntimeError, NotImplementedError, TypeError, ValueError, AttributeError) as e:
            raise ConversionError(f"onnxmltools cannot convert {type(model).__name__}: {e}") from None
        if type(model).__name__ == "Booster":
            objective = booster_objective(model)
            if objective in PROBABILITY_OBJECTIVES:
                booster_probabilities_as_prediction(graph, positive_class_only=objective == "binary:logistic")
        return graph


# The classifying objectives whose Booster.predict answers probabilities (the positive class's
# for binary:logistic); the others (softmax labels, margins, regression) keep their one output.
PROBABILITY_OBJECTIVES = ("multi:softprob", "binary:logistic")


def booster_objective(booster: Any) -> str:
    """The objective a Booster was trained with (``reg:squarederror``, ``multi:softprob`` ...)."""
    return str(json.loads(booster.save_config())["learner"]["objective"]["name"])
