"""What every flavor provides, and helpers the flavors share.

A flavor knows one framework: how to recognise its models, write them into a
package and read them back, run them on ``{name: array}`` inputs, and convert
them to ONNX. Flavors are stateless; the model object is passed in.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol

import numpy as np

from quayside.errors import ConversionError, MissingExtraError, SignatureError
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Arrays, Schema, Signature

Options = Mapping[str, Any]


class Flavor(Protocol):
    """One framework's way of saving, loading, running and converting a model."""

    name: ClassVar[str]
    trust_required: ClassVar[bool]
    """True when loading executes code stored in the package (unpickling)."""

    def matches(self, model: Any) -> bool:
        """Whether this flavor handles the object (checked without importing its framework)."""
        ...

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        """Distributions the native model needs at load time, unpinned."""
        ...

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        """Write the model under ``root``; return the files written and options to store."""
        ...

    def own_signature(self, model: Any) -> Signature | None:
        """The signature the model declares itself (ONNX graphs do), or None to infer one."""
        ...

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> Any:
        """Read the native model back from verified package files."""
        ...

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        """Run the native model on coerced inputs; return named output arrays."""
        ...

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        """An ``onnx.ModelProto`` whose outputs, in order, are those of :meth:`predict`."""
        ...


def import_extra(module: str, extra: str, what: str | None = None) -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(extra, what or module, cause=e) from e


def is_instance_by_name(model: Any, module: str, names: tuple[str, ...]) -> bool:
    """isinstance() against classes of a module, without importing the module if it is absent."""
    loaded = sys.modules.get(module)
    if loaded is None:
        return False
    classes = tuple(c for c in (getattr(loaded, n, None) for n in names) if isinstance(c, type))
    return bool(classes) and isinstance(model, classes)


def as_matrix(inputs: Arrays, schema: Schema) -> np.ndarray:
    """Inputs as one 2-D array: a table's columns side by side, or the single tensor input."""
    if schema.kind == "tensors":
        if len(schema.specs) != 1:
            raise SignatureError(
                f"this model takes one array, but the signature has {len(schema.specs)} inputs"
            )
        return inputs[schema.specs[0].name]
    columns = [inputs[name] for name in schema.names]
    return np.column_stack(columns) if columns else np.empty((0, 0))


def as_frame(inputs: Arrays, schema: Schema) -> Any:
    """A table's columns as a pandas DataFrame, in schema order."""
    pandas = import_extra("pandas", "pandas", "models trained on DataFrames")
    return pandas.DataFrame({name: inputs[name] for name in schema.names})


def classifier_outputs(labels: Any, probabilities: Any) -> Arrays:
    """The two outputs every classifier flavor returns, in this order."""
    return {"label": np.asarray(labels), "probabilities": np.asarray(probabilities)}


def named_outputs(result: Any, default_name: str = "prediction") -> Arrays:
    """A model's raw output as named arrays: a dict keeps its keys, a DataFrame its columns."""
    if isinstance(result, Mapping):
        return {str(k): np.asarray(v) for k, v in result.items()}
    if type(result).__name__ == "DataFrame":
        return {str(c): result[c].to_numpy() for c in result.columns}
    if isinstance(result, tuple):
        return {f"{default_name}_{i}": np.asarray(v) for i, v in enumerate(result)}
    return {default_name: np.asarray(result)}


def float_tensor_type(dtype_name: str, shape: list[int | None], module: Any) -> Any:
    """The converter's tensor type for an input; floats become float32, ONNX ML's native type."""
    types = {
        "string": module.StringTensorType,
        "int64": module.Int64TensorType,
        "int32": module.Int32TensorType,
        "bool": module.BooleanTensorType,
    }
    if dtype_name in types:
        return types[dtype_name](shape)
    if dtype_name.startswith(("float", "int", "uint")):
        return module.FloatTensorType(shape)
    raise ConversionError(f"inputs of dtype {dtype_name} cannot be converted to ONNX")


def matrix_initial_types(inputs: Schema, module: Any) -> list[tuple[str, Any]]:
    """One float input holding every feature column, for tree-ensemble converters."""
    if inputs.kind == "tensors":
        spec = inputs.specs[0]
        return [(spec.name, module.FloatTensorType([None, *spec.shape[1:]]))]
    kinds = {spec.dtype_info.numpy.kind for spec in inputs.specs}
    if not kinds <= set("biuf"):
        raise ConversionError("tree ensembles convert only numeric feature columns")
    return [("input", module.FloatTensorType([None, len(inputs.specs)]))]


GATHER_OPSET = 13  # any opset has Gather; 13 is one every ONNX Runtime in use runs


def booster_probabilities_as_prediction(graph: Any, *, positive_class_only: bool) -> None:
    """Make a classifying booster's ONNX graph answer as ``Booster.predict`` does: one output.

    onnxmltools gives a classifying booster two outputs, the label and the class
    probabilities; ``Booster.predict`` answers the probabilities alone (``(n, k)``), or for
    a binary objective the positive class's probability (``(n,)``). The label output is
    dropped; a binary graph gathers column 1 of the probabilities.
    """
    onnx = import_extra("onnx", "onnx")
    outputs = list(graph.graph.output)
    if len(outputs) != 2:
        raise ConversionError(
            f"expected the classifier's label and probabilities from onnxmltools, got {len(outputs)} outputs"
        )
    probabilities = outputs[1]
    del graph.graph.output[:]
    if not positive_class_only:
        graph.graph.output.append(probabilities)
        return
    helper = onnx.helper
    index = onnx.numpy_helper.from_array(np.asarray(1, dtype=np.int64), name="positive_class")
    graph.graph.initializer.append(index)
    positive = f"{probabilities.name}_positive"
    graph.graph.node.append(helper.make_node("Gather", [probabilities.name, index.name], [positive], axis=1))
    elem_type = probabilities.type.tensor_type.elem_type
    graph.graph.output.append(helper.make_tensor_value_info(positive, elem_type, ["N"]))
    if not any(o.domain in ("", "ai.onnx") for o in graph.opset_import):
        # A tree-only graph imports just ai.onnx.ml; Gather is in the default domain.
        graph.opset_import.append(helper.make_opsetid("", GATHER_OPSET))
