"""The ONNX flavor, and :class:`OnnxRunner`, the ONNX Runtime session every ONNX model runs in.

ONNX files are data, not code: loading one needs no trust.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from quayside.errors import ConversionError, PackageError, SignatureError, UsageError
from quayside.packager.flavors.base import Options, import_extra, is_instance_by_name
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import DTYPES, Arrays, Schema, Signature, TensorSpec

MODEL_FILE = "model.onnx"

_BY_ONNX_TYPE = {d.onnx: d for d in DTYPES.values()}
_ONNX_ELEM_TYPES = {d.onnx_elem_type: d.name for d in DTYPES.values()}


def session_options(intra_op_threads: int = 0, *, spinning: bool = True) -> Any:
    """ORT session options: all graph optimisations, and a thread count (0 = ORT's default).

    ``spinning=False`` stops idle intra-op threads from busy-waiting for work: a
    server shares its cores with the event loop that parses requests, and a
    spinning pool thread would take that core away between calls.
    """
    ort = import_extra("onnxruntime", "onnx", "running ONNX models")
    ort.set_default_logger_severity(3)  # warnings (e.g. on declared output shapes) are not user-actionable
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRunner:
    """An ONNX Runtime session that takes and returns arrays in a signature's terms.

    It bridges the small differences between a signature and the graph it
    describes: table columns fed to ``[N, 1]`` graph inputs, or stacked into one
    ``[N, k]`` matrix; values cast to the graph's input types (float64 to
    float32); ``[N, 1]`` outputs squeezed to the signature's ``(-1,)``.
    """

    def __init__(
        self,
        model_bytes: bytes,
        inputs: Schema,
        outputs: Schema,
        *,
        intra_op_threads: int = 0,
        spinning: bool = True,
    ) -> None:
        ort = import_extra("onnxruntime", "onnx", "running ONNX models")
        try:
            self.session = ort.InferenceSession(
                model_bytes,
                sess_options=session_options(intra_op_threads, spinning=spinning),
                providers=["CPUExecutionProvider"],
            )
        except Exception as e:  # ORT raises its own untyped errors for bad graphs
            raise PackageError(f"ONNX Runtime cannot load the model: {_first_line(e)}") from None
        self.inputs = inputs
        self.outputs = outputs
        self._graph_inputs = [(i.name, i.type, len(i.shape)) for i in self.session.get_inputs()]
        graph_outputs = [o.name for o in self.session.get_outputs()]
        missing = [n for n in outputs.names if n not in graph_outputs]
        if missing:
            raise PackageError(f"the ONNX graph has no output named {', '.join(missing)}")
        self._stack = inputs.kind == "table" and [n for n, _, _ in self._graph_inputs] != inputs.names
        if self._stack and len(self._graph_inputs) != 1:
            raise PackageError("the ONNX graph's inputs do not match the signature's columns")

    def run(self, inputs: Arrays) -> Arrays:
        """Run the graph on coerced inputs; outputs come back named and typed as the signature says."""
        try:
            results = self.session.run(self.outputs.names, self._feed(inputs))
        except Exception as e:  # ORT's InvalidArgument/Fail carry no stable types
            raise SignatureError(f"ONNX Runtime rejected the input: {_first_line(e)}") from None
        return {
            spec.name: _conform(result, spec)
            for spec, result in zip(self.outputs.specs, results, strict=True)
        }

    def _feed(self, inputs: Arrays) -> dict[str, np.ndarray]:
        if self._stack:
            name, type_name, _ = self._graph_inputs[0]
            matrix = np.column_stack([inputs[n] for n in self.inputs.names])
            return {name: _to_graph_type(matrix, type_name)}
        feed = {}
        for name, type_name, rank in self._graph_inputs:
            value = inputs[name]
            if value.ndim == rank - 1:
                value = value.reshape(*value.shape, 1)
            feed[name] = _to_graph_type(value, type_name)
        return feed


def _to_graph_type(array: np.ndarray, type_name: str) -> np.ndarray:
    target = _BY_ONNX_TYPE.get(type_name)
    if target is None or array.dtype == target.numpy:
        return array
    return array.astype(target.numpy)


def _conform(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if array.ndim == len(spec.shape) + 1 and array.shape[-1] == 1:
        array = array.reshape(array.shape[:-1])
    want = spec.dtype_info.numpy
    return array if array.dtype == want else array.astype(want)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def graph_schemas(model_bytes: bytes) -> tuple[Schema, Schema]:
    """A signature read from the graph itself: its inputs and outputs, names, types and shapes."""
    onnx = import_extra("onnx", "onnx", "reading ONNX models")
    model = onnx.load_from_string(model_bytes)

    def spec(value_info: Any) -> TensorSpec:
        tensor = value_info.type.tensor_type
        dtype_name = _ONNX_ELEM_TYPES.get(tensor.elem_type)
        if dtype_name is None:
            raise PackageError(f"ONNX value '{value_info.name}' has an unsupported element type")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return TensorSpec(value_info.name, dtype_name, dims or (-1,))

    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    return Schema("tensors", inputs), Schema("tensors", tuple(spec(v) for v in model.graph.output))


class OnnxFlavor:
    """ONNX models: an ``onnx.ModelProto``, or a path to a ``.onnx`` file."""

    name: ClassVar[str] = "onnx"
    trust_required: ClassVar[bool] = False

    def matches(self, model: Any) -> bool:
        if isinstance(model, str | os.PathLike):
            return str(model).endswith(".onnx")
        return is_instance_by_name(model, "onnx", ("ModelProto",))

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        return ["onnxruntime", "numpy"]

    def model_bytes(self, model: Any) -> bytes:
        if isinstance(model, str | os.PathLike):
            path = Path(model)
            if not path.is_file():
                raise UsageError(f"no ONNX file at '{path}'")
            return path.read_bytes()
        return model.SerializeToString()

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        (root / MODEL_FILE).write_bytes(self.model_bytes(model))
        return [MODEL_FILE], {}

    def own_signature(self, model: Any) -> Signature:
        return Signature(*graph_schemas(self.model_bytes(model)))

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> OnnxRunner:
        return OnnxRunner(reader.read_bytes(MODEL_FILE), signature.inputs, signature.outputs)

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        runner = model if isinstance(model, OnnxRunner) else None
        if runner is None:
            own = self.own_signature(model)
            runner = OnnxRunner(self.model_bytes(model), own.inputs, own.outputs)
        return runner.run(inputs)

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        raise ConversionError("the model is already ONNX")
