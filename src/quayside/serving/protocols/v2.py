"""The Open Inference Protocol (V2, as spoken by KServe, Triton and MLServer): requests to arrays and back.

A request names each input with a V2 datatype (``FP32``, ``INT64``, ``BYTES``,
...), a shape and its data, flat in row-major order or nested. The declared
datatype is honoured first (``INT64`` data holding ``1.5`` is an error, not a
truncation), then the input is checked against the model's signature.

Triton's binary tensor data extension (what ``tritonclient.http`` sends by
default) is spoken too: inputs may carry their values as raw bytes after the
JSON header, and outputs may be asked for the same way; :mod:`.binary` holds the
framing. A plain JSON request never touches it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from quayside.errors import MalformedInputError, SignatureError, UsageError
from quayside.packager.signature import (
    DTYPES,
    Arrays,
    DType,
    Schema,
    TensorSpec,
    coerce_array,
    coerce_inputs,
    row_count,
)
from quayside.serving.protocols import binary
from quayside.serving.protocols.binary import Framed, Payload
from quayside.serving.protocols.codec import dumps, jsonable, loads

_BY_V2_NAME = {d.v2: d for d in DTYPES.values()}
_PROTOCOL_HINT = 'expected {"inputs": [{"name": ..., "datatype": ..., "shape": [...], "data": [...]}]}'
_NO_FLAGS: Mapping[str, bool] = MappingProxyType({})
_NO_NAMES: frozenset[str] = frozenset()
_UNSUPPORTED_OUTPUT_PARAMETERS = {
    "classification": "the classification extension",
    "shared_memory_region": "the shared-memory extension",
}


@dataclass(frozen=True)
class BinaryOutputs:
    """Which outputs a request asked for as binary data (the binary tensor data extension)."""

    by_name: Mapping[str, bool]
    """Outputs asked for with ``parameters: {"binary_data": ...}``: whether each is answered in binary."""
    default: bool
    """The request's ``parameters: {"binary_data_output": ...}``: how the other outputs are answered."""

    def select(self, names: Iterable[str]) -> frozenset[str]:
        """Which of the outputs ``names`` are answered in binary."""
        return frozenset(n for n in names if self.by_name.get(n, self.default))


@dataclass(frozen=True)
class InferRequest:
    """A parsed V2 request: checked inputs, the outputs asked for (None = all), and its id."""

    inputs: Arrays
    rows: int
    outputs: tuple[str, ...] | None
    id: str | None
    binary: BinaryOutputs | None = None
    """None when no output was asked for in binary (every plain JSON request)."""

    def binary_outputs(self, names: Iterable[str]) -> frozenset[str]:
        """Which of the outputs ``names`` the answer carries as binary data."""
        return _NO_NAMES if self.binary is None else self.binary.select(names)


def _field(tensor: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = tensor.get(key)
    if not isinstance(value, kind):
        raise UsageError(f"{where}: '{key}' is missing or not a {_kind_label(kind)}; {_PROTOCOL_HINT}")
    return value


def _kind_label(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "string", list: "list", dict: "object", int: "integer"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _shape(raw: list[Any], where: str) -> tuple[int, ...]:
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise UsageError(f"{where}: shape must be a list of non-negative integers, got {raw}")
    return tuple(raw)


def _decode_tensor(tensor: Any, index: int, payload: Payload | None) -> tuple[str, np.ndarray]:
    """One request tensor as an array of its declared datatype and shape.

    ``payload`` holds the binary data after the inference header; None for a plain JSON request.
    """
    if not isinstance(tensor, dict):
        raise UsageError(f"inputs[{index}] is not an object; {_PROTOCOL_HINT}")
    name = _field(tensor, "name", str, f"inputs[{index}]")
    where = f"input '{name}'"
    datatype = _field(tensor, "datatype", str, where)
    shape = _shape(_field(tensor, "shape", list, where), where)
    declared = _BY_V2_NAME.get(datatype.upper())
    if declared is None:
        raise UsageError(f"{where}: unknown datatype '{datatype}' (V2 datatypes: {', '.join(_BY_V2_NAME)})")
    parameters = tensor.get("parameters")
    if parameters is not None:
        size = binary.binary_data_size(parameters, where)
        if size is not None:
            return name, _binary_tensor(tensor, size, declared, shape, payload, where)
    data = _field(tensor, "data", list, where)
    try:
        values = np.array(data, dtype=object if declared.name == "string" else None)
    except ValueError:
        raise MalformedInputError(f"{where}: data is a ragged nested list") from None
    if values.size != math.prod(shape):
        raise UsageError(f"{where}: shape {list(shape)} needs {math.prod(shape)} values, got {values.size}")
    values = values.reshape(shape)
    # Honour the declared datatype first: INT64 data holding 1.5 is an error, not a truncation.
    as_declared = TensorSpec(name, declared.name, tuple(-1 for _ in shape) or (-1,), allow_nan=True)
    if not shape:
        return name, values
    return name, coerce_array(values, as_declared)


def _binary_tensor(
    tensor: Mapping[str, Any],
    size: int,
    declared: DType,
    shape: tuple[int, ...],
    payload: Payload | None,
    where: str,
) -> np.ndarray:
    if payload is None:
        raise UsageError(
            f"{where}: binary_data_size is given, but the request has no Inference-Header-Content-Length "
            "header saying where the binary data starts"
        )
    if "data" in tensor:
        raise UsageError(f"{where}: has both 'data' and binary_data_size; send its values one way only")
    return binary.decode_tensor(payload.take(size, where), declared, shape, where)


def parse_infer_request(body: bytes, schema: Schema, *, header_length: str | None = None) -> InferRequest:
    """Parse and check a V2 inference request body against the model's input schema.

    ``header_length`` is the request's ``Inference-Header-Content-Length``: with it, the
    body is a JSON header followed by the inputs' binary data (:mod:`.binary`).
    """
    if header_length is None:
        document, payload = loads(body), None
    else:
        document, payload = _split(body, header_length)
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise UsageError(f"not a V2 inference request; {_PROTOCOL_HINT}")
    named: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(document["inputs"]):
        name, values = _decode_tensor(tensor, index, payload)
        if name in named:
            raise UsageError(f"input '{name}' is given twice")
        named[name] = values
    if payload is not None:
        payload.finish()
    inputs = coerce_inputs(_as_columns(named, schema), schema)
    outputs, binary_data = _requested_outputs(document)
    parameters = document.get("parameters")
    binary_default = parameters is not None and _flag(parameters, "binary_data_output", "the request") is True
    binary = BinaryOutputs(binary_data, binary_default) if binary_data or binary_default else None
    return InferRequest(inputs, row_count(inputs), outputs, _request_id(document), binary)


def _split(body: bytes, header_length: str) -> tuple[Any, Payload]:
    """A framed body's JSON header, parsed, and the binary data after it."""
    length = binary.header_length(header_length, len(body))
    what = f"the inference header (the first {length} bytes, as Inference-Header-Content-Length says)"
    return loads(memoryview(body)[:length], what), Payload(body, length)


def _as_columns(named: dict[str, np.ndarray], schema: Schema) -> dict[str, np.ndarray]:
    """Table columns may come as ``[N, 1]`` tensors; the signature holds them as ``[N]``."""
    if schema.kind != "table":
        return named
    return {n: v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v for n, v in named.items()}


def _requested_outputs(document: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, Mapping[str, bool]]:
    """The output names asked for (None: all), and which of them were asked for in binary or not."""
    requested = document.get("outputs")
    if requested is None:
        return None, _NO_FLAGS
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise UsageError('outputs must be a list of {"name": ...} objects')
    flags: dict[str, bool] = {}
    for output in requested:
        parameters = output.get("parameters")
        if parameters is None:
            continue
        where = f"output '{output['name']}'"
        _refuse_unsupported(parameters, where)
        flag = _flag(parameters, "binary_data", where)
        if flag is not None:
            flags[output["name"]] = flag
    return tuple(o["name"] for o in requested), flags or _NO_FLAGS


def _flag(parameters: Any, key: str, where: str) -> bool | None:
    """A true/false entry of a ``parameters`` object; None when it is not there."""
    if not isinstance(parameters, dict):
        raise UsageError(f"{where}: 'parameters' must be an object")
    flag = parameters.get(key)
    if flag is None or isinstance(flag, bool):
        return flag
    raise UsageError(f"{where}: parameter '{key}' must be true or false")


def _refuse_unsupported(parameters: Any, where: str) -> None:
    if not isinstance(parameters, dict):
        return  # _flag names the problem
    for key, extension in _UNSUPPORTED_OUTPUT_PARAMETERS.items():
        if key in parameters:
            raise UsageError(f"{where}: '{key}' asks for {extension}, which this server does not support")


def _request_id(document: Mapping[str, Any]) -> str | None:
    value = document.get("id")
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError("id must be a string")
    return value


def select_outputs(outputs: Arrays, requested: Sequence[str] | None, schema: Schema) -> Arrays:
    """The outputs a request asked for, in the order it asked; an unknown name is a 422."""
    if requested is None:
        return outputs
    unknown = [name for name in requested if name not in outputs]
    if unknown:
        raise SignatureError(
            f"unknown output {', '.join(repr(u) for u in unknown)} (the model returns: {', '.join(schema.names)})"
        )
    return {name: outputs[name] for name in requested}


def render_infer_response(
    outputs: Arrays,
    schema: Schema,
    *,
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    binary_outputs: frozenset[str] = _NO_NAMES,
) -> bytes | Framed:
    """A V2 inference response body; each output's data is flat, row-major.

    Outputs named in ``binary_outputs`` are sent as binary data after the JSON header
    (the extension): the answer is then :class:`~.binary.Framed`, else plain JSON bytes.
    """
    document: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        document["model_version"] = model_version
    if request_id is not None:
        document["id"] = request_id
    if binary_outputs:
        return _render_framed(document, outputs, schema, binary_outputs)
    document["outputs"] = [
        {
            "name": name,
            "datatype": schema[name].dtype_info.v2,
            "shape": list(array.shape),
            "data": jsonable(array.reshape(-1)),
        }
        for name, array in outputs.items()
    ]
    return dumps(document)


def _render_framed(
    document: dict[str, Any], outputs: Arrays, schema: Schema, binary_outputs: frozenset[str]
) -> Framed:
    described: list[dict[str, Any]] = []
    tensors: list[bytes] = []
    for name, array in outputs.items():
        declared = schema[name].dtype_info
        entry: dict[str, Any] = {"name": name, "datatype": declared.v2, "shape": list(array.shape)}
        if name in binary_outputs:
            raw = binary.encode_tensor(array, declared)
            entry["parameters"] = {"binary_data_size": len(raw)}
            tensors.append(raw)
        else:
            entry["data"] = jsonable(array.reshape(-1))
        described.append(entry)
    document["outputs"] = described
    return binary.frame(dumps(document), tensors)


def tensor_metadata(schema: Schema) -> list[dict[str, Any]]:
    """Inputs or outputs as V2 metadata lists them: name, datatype, shape."""
    return [
        {"name": spec.name, "datatype": spec.dtype_info.v2, "shape": list(spec.shape)}
        for spec in schema.specs
    ]
