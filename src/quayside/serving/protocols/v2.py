"""The Open Inference Protocol (V2, as spoken by KServe, Triton and MLServer): requests to arrays and back.

A request names each input with a V2 datatype (``FP32``, ``INT64``, ``BYTES``,
...), a shape and its data, flat in row-major order or nested. The declared
datatype is honoured first (``INT64`` data holding ``1.5`` is an error, not a
truncation), then the input is checked against the model's signature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quayside.errors import MalformedInputError, SignatureError, UsageError
from quayside.packager.signature import (
    DTYPES,
    Arrays,
    Schema,
    TensorSpec,
    coerce_array,
    coerce_inputs,
    row_count,
)
from quayside.serving.protocols.codec import dumps, jsonable, loads

_BY_V2_NAME = {d.v2: d for d in DTYPES.values()}
_PROTOCOL_HINT = 'expected {"inputs": [{"name": ..., "datatype": ..., "shape": [...], "data": [...]}]}'


@dataclass(frozen=True)
class InferRequest:
    """A parsed V2 request: checked inputs, the outputs asked for (None = all), and its id."""

    inputs: Arrays
    rows: int
    outputs: tuple[str, ...] | None
    id: str | None


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


def _decode_tensor(tensor: Any, index: int) -> tuple[str, np.ndarray]:
    """One request tensor as an array of its declared datatype and shape."""
    if not isinstance(tensor, dict):
        raise UsageError(f"inputs[{index}] is not an object; {_PROTOCOL_HINT}")
    name = _field(tensor, "name", str, f"inputs[{index}]")
    where = f"input '{name}'"
    datatype = _field(tensor, "datatype", str, where)
    shape = _shape(_field(tensor, "shape", list, where), where)
    data = _field(tensor, "data", list, where)
    declared = _BY_V2_NAME.get(datatype.upper())
    if declared is None:
        raise UsageError(f"{where}: unknown datatype '{datatype}' (V2 datatypes: {', '.join(_BY_V2_NAME)})")
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


def parse_infer_request(body: bytes, schema: Schema) -> InferRequest:
    """Parse and check a V2 inference request body against the model's input schema."""
    document = loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise UsageError(f"not a V2 inference request; {_PROTOCOL_HINT}")
    named: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(document["inputs"]):
        name, values = _decode_tensor(tensor, index)
        if name in named:
            raise UsageError(f"input '{name}' is given twice")
        named[name] = values
    inputs = coerce_inputs(_as_columns(named, schema), schema)
    return InferRequest(inputs, row_count(inputs), _requested_outputs(document), _request_id(document))


def _as_columns(named: dict[str, np.ndarray], schema: Schema) -> dict[str, np.ndarray]:
    """Table columns may come as ``[N, 1]`` tensors; the signature holds them as ``[N]``."""
    if schema.kind != "table":
        return named
    return {n: v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v for n, v in named.items()}


def _requested_outputs(document: Mapping[str, Any]) -> tuple[str, ...] | None:
    requested = document.get("outputs")
    if requested is None:
        return None
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise UsageError('outputs must be a list of {"name": ...} objects')
    return tuple(o["name"] for o in requested)


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
    outputs: Arrays, schema: Schema, *, model_name: str, model_version: str | None, request_id: str | None
) -> bytes:
    """A V2 inference response body; each output's data is flat, row-major."""
    document: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        document["model_version"] = model_version
    if request_id is not None:
        document["id"] = request_id
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


def tensor_metadata(schema: Schema) -> list[dict[str, Any]]:
    """Inputs or outputs as V2 metadata lists them: name, datatype, shape."""
    return [
        {"name": spec.name, "datatype": spec.dtype_info.v2, "shape": list(spec.shape)}
        for spec in schema.specs
    ]
