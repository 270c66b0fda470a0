"""The binary tensor data extension of V2 over HTTP, as Triton defines it and ``tritonclient.http`` sends it.

A request with an ``Inference-Header-Content-Length: N`` header holds a JSON
inference header in its first N bytes. Each input whose ``parameters`` hold
``binary_data_size`` takes that many of the bytes after the header, in input
order: the tensor raw, little-endian and row-major, or for ``BYTES`` each element
as a 4-byte little-endian length followed by its bytes. A response in which some
outputs are sent in binary is framed the same way, and names its header's length
in the same HTTP header. This module holds the framing only; :mod:`.v2` decides
which tensors travel in binary.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quayside.errors import UsageError
from quayside.packager.signature import DType

HEADER_LENGTH = "inference-header-content-length"
"""The HTTP header (lower case, as ASGI and Starlette hand headers over) naming the JSON header's length."""
OCTET_STREAM = "application/octet-stream"
"""The content type of a response that carries binary tensor data (Triton's; tritonclient reads the
length header, not the content type)."""

_LENGTH = struct.Struct("<I")
_HEADER_NAME = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class Framed:
    """A response body framed by the extension: ``header_length`` bytes of JSON, then tensor bytes."""

    body: bytes
    header_length: int


def _shown(value: Any) -> str:
    """A caller's value as an error message quotes it: short, whatever it holds."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def header_length(value: str, body_length: int) -> int:
    """The length the request's ``Inference-Header-Content-Length`` names, checked against the body."""
    stripped = value.strip()
    if not (stripped.isascii() and stripped.isdigit()):
        raise UsageError(f"{_HEADER_NAME} must be a non-negative integer, got {_shown(value)}")
    length = int(stripped)
    if length > body_length:
        raise UsageError(f"{_HEADER_NAME} is {length} bytes, but the whole body is only {body_length} bytes")
    if length == 0:
        raise UsageError(f"{_HEADER_NAME} is 0: the inference header (a JSON document) is missing")
    return length


class Payload:
    """The bytes after the inference header, taken by the binary inputs one after another."""

    def __init__(self, body: bytes, start: int) -> None:
        self._view = memoryview(body)
        self._offset = start

    def take(self, size: int, where: str) -> memoryview:
        """The next ``size`` bytes, for the input ``where`` names."""
        left = len(self._view) - self._offset
        if size > left:
            raise UsageError(
                f"{where}: binary_data_size is {size} bytes, but only {left} bytes of binary data are left"
            )
        chunk = self._view[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def finish(self) -> None:
        """Refuse a body whose binary data holds more than its inputs claimed."""
        left = len(self._view) - self._offset
        if left:
            raise UsageError(
                f"{left} bytes of binary data after the inference header belong to no input "
                "(the inputs' binary_data_size add up to less)"
            )


def binary_data_size(parameters: Any, where: str) -> int | None:
    """The ``binary_data_size`` in a tensor's ``parameters``; None when it has none."""
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise UsageError(f"{where}: 'parameters' must be an object, got {_shown(parameters)}")
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UsageError(f"{where}: binary_data_size must be a non-negative integer, got {_shown(size)}")
    return size


def decode_tensor(raw: memoryview, declared: DType, shape: Sequence[int], where: str) -> np.ndarray:
    """One input's binary data as an array of its declared datatype and shape."""
    count = math.prod(shape)
    if declared.name == "string":
        return _decode_strings(raw, count, where).reshape(shape)
    itemsize = declared.numpy.itemsize
    if len(raw) != count * itemsize:
        raise UsageError(
            f"{where}: binary_data_size is {len(raw)} bytes, but shape {list(shape)} of {declared.v2} "
            f"takes {count * itemsize} ({count} values of {itemsize} bytes)"
        )
    array = np.frombuffer(raw, dtype=declared.numpy.newbyteorder("<")).reshape(shape)
    if declared.name == "bool" and count and np.frombuffer(raw, dtype=np.uint8).max() > 1:
        raise UsageError(f"{where}: BOOL data must be one byte of 0 or 1 per value")
    if not (array.dtype.isnative and array.flags.aligned):
        array = array.astype(declared.numpy)  # a copy the runtime can read at full speed
    return array


def _decode_strings(raw: memoryview, count: int, where: str) -> np.ndarray:
    offset, end = 0, len(raw)
    if count * _LENGTH.size > end:  # before allocating: a shape may claim more than the body holds
        raise UsageError(
            f"{where}: binary_data_size is {end} bytes, too few for the {count} BYTES elements its shape "
            f"takes (each at least {_LENGTH.size} bytes: a little-endian length, then that many bytes)"
        )
    values = np.empty(count, dtype=object)
    for index in range(count):
        if offset + _LENGTH.size > end:
            raise _short_strings(where, index, count)
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > end:
            raise _short_strings(where, index, count)
        try:
            values[index] = str(raw[offset : offset + length], "utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{where}: BYTES element {index} is not UTF-8 text") from None
        offset += length
    if offset != end:
        raise UsageError(
            f"{where}: binary_data_size is {end} bytes, but the {count} BYTES elements its shape takes "
            f"end after {offset}"
        )
    return values


def _short_strings(where: str, index: int, count: int) -> UsageError:
    return UsageError(
        f"{where}: the BYTES data ends inside element {index} of the {count} its shape takes "
        "(each element is a 4-byte little-endian length, then that many bytes)"
    )


def encode_tensor(array: np.ndarray, declared: DType) -> bytes:
    """One output's binary data: raw little-endian row-major values, or length-prefixed strings."""
    if declared.name == "string":
        return b"".join(_LENGTH.pack(len(item)) + item for item in map(_utf8, array.flat))
    return np.ascontiguousarray(array, dtype=declared.numpy.newbyteorder("<")).tobytes()


def _utf8(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def frame(header: bytes, tensors: Sequence[bytes]) -> Framed:
    """The response body: the JSON header, then each binary output's bytes in output order."""
    return Framed(b"".join((header, *tensors)), len(header))


def response_headers(framed: Framed) -> Mapping[str, str]:
    """The HTTP headers a framed response adds to its content type and length."""
    return {HEADER_LENGTH: str(framed.header_length)}
