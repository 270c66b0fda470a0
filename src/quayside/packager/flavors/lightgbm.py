"""The LightGBM flavor: boosters saved in LightGBM's text format, with the classifier's classes.

The text format is data, not code, so loading needs no trust. A classifier is
restored as a ``Booster`` plus its class list: labels are the classes at the
highest probability, as ``LGBMClassifier.predict`` computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from quayside.errors import ConversionError
from quayside.packager.flavors.base import (
    Options,
    as_matrix,
    booster_probabilities_as_prediction,
    classifier_outputs,
    import_extra,
    is_instance_by_name,
    matrix_initial_types,
)
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Arrays, Schema, Signature

MODEL_FILE = "model.txt"
MODEL_CLASSES = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker", "Booster")


class LightGBMFlavor:
    """LightGBM ``Booster`` and ``LGBMClassifier``/``LGBMRegressor`` models."""

    name: ClassVar[str] = "lightgbm"
    trust_required: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        return is_instance_by_name(model, "lightgbm", MODEL_CLASSES)

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        return ["lightgbm", "numpy"]

    def own_signature(self, model: Any) -> Signature | None:
        return None

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        booster = model if type(model).__name__ == "Booster" else model.booster_
        (root / MODEL_FILE).write_text(booster.model_to_string(), encoding="utf-8")
        options: dict[str, Any] = {"model_class": type(model).__name__}
        if hasattr(model, "classes_"):
            options["classes"] = np.asarray(model.classes_).tolist()
        return [MODEL_FILE], options

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> Any:
        lightgbm = import_extra("lightgbm", "lightgbm", "loading LightGBM models")
        return lightgbm.Booster(model_str=reader.read_bytes(MODEL_FILE).decode("utf-8"))

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        booster = model if type(model).__name__ == "Booster" else model.booster_
        raw = np.asarray(booster.predict(as_matrix(inputs, schema)))
        classes = options.get("classes")
        if classes is None:
            return {"prediction": raw}
        probabilities = raw if raw.ndim == 2 else np.column_stack([1.0 - raw, raw])
        return classifier_outputs(np.asarray(classes)[probabilities.argmax(axis=1)], probabilities)

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        onnxmltools = import_extra("onnxmltools", "lightgbm", "converting LightGBM models to ONNX")
        data_types = import_extra("onnxmltools.convert.common.data_types", "lightgbm")
        booster = model if type(model).__name__ == "Booster" else model.booster_
        try:
            graph = onnxmltools.convert_lightgbm(
                booster,
                initial_types=matrix_initial_types(inputs, data_types),
                target_opset=opset,
                zipmap=False,
            )
        except (RuntimeError, NotImplementedError, TypeError, ValueError, AttributeError) as e:
            raise ConversionError(f"onnxmltools cannot convert {type(model).__name__}: {e}") from None
        classes = options.get("classes")
        if classes is None:
            objective = booster_objective(booster)
            if objective in PROBABILITY_OBJECTIVES:
                booster_probabilities_as_prediction(graph, positive_class_only=objective == "binary")
        elif classes != list(range(len(classes))):
            map_labels_to_classes(graph, classes)
        return graph


# The classifying objectives whose Booster.predict answers probabilities (the positive class's
# for binary); multiclassova and the rest keep what the converter gives.
PROBABILITY_OBJECTIVES = ("multiclass", "binary")


def booster_objective(booster: Any) -> str:
    """The objective's name a Booster was trained with (``binary``, ``multiclass``, ``regression`` ...)."""
    return str(booster.dump_model(num_iteration=0).get("objective", "")).split(" ")[0]


def map_labels_to_classes(graph: Any, classes: list[Any]) -> None:
    """Replace the graph's class-index label output with the class values themselves.

    A Booster knows class indices only; the classifier's labels are its classes.
    """
    onnx = import_extra("onnx", "onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    label = graph.graph.output[0]
    index_name = f"{label.name}_index"
    for node in graph.graph.node:
        node.output[:] = [index_name if o == label.name else o for o in node.output]
    values = np.asarray(classes, dtype=object if isinstance(classes[0], str) else np.int64)
    graph.graph.initializer.append(numpy_helper.from_array(values, name="classes"))
    graph.graph.node.append(helper.make_node("Gather", ["classes", index_name], [label.name], axis=0))
    elem_type = onnx.TensorProto.STRING if values.dtype == object else onnx.TensorProto.INT64
    label.type.tensor_type.elem_type = elem_type
