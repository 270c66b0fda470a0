"""``ModelInfer`` messages to arrays and back: raw contents and typed contents.

A request carries each input's data one of two ways. Raw: ``raw_input_contents``
holds one bytes entry per input, in the order of ``inputs``, each the tensor's
elements flat, row-major and little-endian, read with :func:`numpy.frombuffer`
(no Python per element); ``BYTES`` elements are each a 4-byte little-endian length,
then that many bytes. Typed: each input's ``contents`` holds its elements in the
repeated field of its datatype (``fp32_contents``, ``int64_contents``, ...). The
answer comes back the way the request came: raw outputs for raw inputs, else typed
(``FP16`` has no typed field, so a response holding one is raw whichever way).

As on REST (:mod:`quayside.serving.protocols.v2`), the declared datatype is
honoured first, then the inputs are checked against the model's signature by
:func:`~quayside.packager.signature.coerce_inputs`, so both transports fail with
the same messages.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from quayside.errors import MalformedInputError, UsageError
from quayside.oip import grpc_predict_v2_pb2 as pb
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
from quayside.serving.protocols import v2

_BY_V2_NAME = {d.v2: d for d in DTYPES.values()}
_LITTLE_ENDIAN = {d.name: d.numpy.newbyteorder("<") for d in DTYPES.values() if d.name != "string"}
_LENGTH = struct.Struct("<I")

_CONTENTS_FIELD = {
    "bool": "bool_contents",
    "int8": "int_contents",
    "int16": "int_contents",
    "int32": "int_contents",
    "int64": "int64_contents",
    "uint8": "uint_contents",
    "uint16": "uint_contents",
    "uint32": "uint_contents",
    "uint64": "uint64_contents",
    "float32": "fp32_contents",
    "float64": "fp64_contents",
    "string": "bytes_contents",
}
"""The typed-contents field of each dtype (KServe's table; float16 has none: raw only)."""

_FIELD_DTYPE = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}


def parse_infer_request(request: pb.ModelInferRequest, schema: Schema) -> v2.InferRequest:
    """Decode and check a ``ModelInferRequest``'s inputs against the model's input schema."""
    raw = request.raw_input_contents
    if raw:
        _check_raw_layout(request)
    named: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(request.inputs):
        name, values = _decode_input(tensor, raw[index] if raw else None)
        if name in named:
            raise UsageError(f"input '{name}' is given twice")
        named[name] = values
    # Table columns may come as [N, 1] tensors, as on REST (the same helper, so the same rule).
    inputs = coerce_inputs(v2._as_columns(named, schema), schema)
    requested = tuple(output.name for output in request.outputs) or None
    return v2.InferRequest(inputs, row_count(inputs), requested, request.id or None)


def uses_raw_contents(request: pb.ModelInferRequest) -> bool:
    """Whether the request sent its inputs raw (and so gets its outputs raw)."""
    return len(request.raw_input_contents) > 0


def _check_raw_layout(request: pb.ModelInferRequest) -> None:
    entries, inputs = len(request.raw_input_contents), len(request.inputs)
    if entries != inputs:
        raise UsageError(
            f"raw_input_contents has {entries} entries for {inputs} inputs; send one per input, "
            "in the order of inputs"
        )
    typed = [tensor.name for tensor in request.inputs if tensor.HasField("contents")]
    if typed:
        raise UsageError(
            f"input '{typed[0]}' has contents although the request uses raw_input_contents; "
            "send every input raw or every input typed"
        )


def _decode_input(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> tuple[str, np.ndarray]:
    """One input as an array of its declared datatype and shape."""
    name = tensor.name
    where = f"input '{name}'"
    declared = _BY_V2_NAME.get(tensor.datatype.upper())
    if declared is None:
        raise UsageError(
            f"{where}: unknown datatype '{tensor.datatype}' (V2 datatypes: {', '.join(_BY_V2_NAME)})"
        )
    shape = _shape(tensor.shape, where)
    if raw is not None:
        return name, _from_raw(raw, declared, shape, where).reshape(shape)
    values = _from_contents(tensor.contents, declared, shape, where).reshape(shape)
    if not shape:
        return name, values
    # Honour the declared datatype first: INT8 data of 300 is an error, not a wrap-around.
    as_declared = TensorSpec(name, declared.name, tuple(-1 for _ in shape), allow_nan=True)
    return name, coerce_array(values, as_declared)


def _shape(dims: Sequence[int], where: str) -> tuple[int, ...]:
    if any(d < 0 for d in dims):
        raise UsageError(f"{where}: shape must be a list of non-negative integers, got {list(dims)}")
    return tuple(dims)


def _from_raw(raw: bytes, declared: DType, shape: tuple[int, ...], where: str) -> np.ndarray:
    count = math.prod(shape)
    if declared.name == "string":
        return _length_prefixed(raw, count, shape, where)
    dtype = _LITTLE_ENDIAN[declared.name]
    if len(raw) != count * dtype.itemsize:
        raise UsageError(
            f"{where}: shape {list(shape)} needs {count} values ({count * dtype.itemsize} bytes of "
            f"{declared.v2}), got {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=dtype)


def _length_prefixed(raw: bytes, count: int, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``BYTES`` raw contents: each element a 4-byte little-endian length, then its bytes."""
    values = np.empty(count, dtype=object)
    offset, end = 0, len(raw)
    for index in range(count):
        if offset + 4 > end:
            raise UsageError(f"{where}: shape {list(shape)} needs {count} values, got {index}")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise MalformedInputError(
                f"{where}: element {index} declares {length} bytes but only {end - offset} follow "
                "(BYTES elements are a 4-byte little-endian length, then that many bytes)"
            )
        values[index] = _text(raw[offset : offset + length], where, index)
        offset += length
    if offset != end:
        raise UsageError(
            f"{where}: shape {list(shape)} needs {count} values; {end - offset} bytes are left after them"
        )
    return values


def _text(data: bytes, where: str, index: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError(f"{where}: element {index} is not UTF-8 text") from None


def _from_contents(
    contents: pb.InferTensorContents, declared: DType, shape: tuple[int, ...], where: str
) -> np.ndarray:
    field = _CONTENTS_FIELD.get(declared.name)
    if field is None:
        raise UsageError(
            f"{where}: {declared.v2} data has no typed contents field; send it in raw_input_contents"
        )
    stray = [descriptor.name for descriptor, _ in contents.ListFields() if descriptor.name != field]
    if stray:
        raise UsageError(f"{where}: {declared.v2} data goes in contents.{field}, not in {', '.join(stray)}")
    values = getattr(contents, field)
    count = math.prod(shape)
    if len(values) != count:
        raise UsageError(f"{where}: shape {list(shape)} needs {count} values, got {len(values)}")
    if field == "bytes_contents":
        decoded = np.empty(count, dtype=object)
        for index, value in enumerate(values):
            decoded[index] = _text(value, where, index)
        return decoded
    # fromiter converts one element at a time: no list of Python numbers as large as the tensor.
    return np.fromiter(values, dtype=_FIELD_DTYPE[field], count=count)


# --- the response ------------------------------------------------------------------------


def render_infer_response(
    outputs: Arrays,
    schema: Schema,
    *,
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    raw: bool,
) -> pb.ModelInferResponse:
    """A ``ModelInferResponse``; each output flat and row-major, raw when ``raw`` (or when one needs it)."""
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version or "", id=request_id or ""
    )
    raw = raw or any(schema[name].dtype not in _CONTENTS_FIELD for name in outputs)
    for name, array in outputs.items():
        spec = schema[name]
        tensor = response.outputs.add(name=name, datatype=spec.dtype_info.v2, shape=array.shape)
        if raw:
            response.raw_output_contents.append(_raw_bytes(array, spec))
        else:
            _fill_contents(tensor.contents, array, spec)
    return response


def _raw_bytes(array: np.ndarray, spec: TensorSpec) -> bytes:
    if spec.dtype == "string":
        return b"".join(_LENGTH.pack(len(b)) + b for b in (_element_bytes(v) for v in array.reshape(-1)))
    return np.ascontiguousarray(array, dtype=_LITTLE_ENDIAN[spec.dtype]).tobytes()


def _fill_contents(contents: pb.InferTensorContents, array: np.ndarray, spec: TensorSpec) -> None:
    field = getattr(contents, _CONTENTS_FIELD[spec.dtype])
    flat = array.reshape(-1)
    if spec.dtype == "string":
        field.extend(_element_bytes(v) for v in flat)
    else:
        field.extend(flat.tolist())


def _element_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
