"""JSON in and out of the protocols: fast (orjson), strict, and numpy-aware."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from quayside.errors import MalformedInputError
from quayside.packager.signature import DTYPES

# Dtypes orjson writes straight from the array buffer (every one of the signature's but
# strings, which are object arrays); others go through tolist().
_NATIVE_NUMPY = frozenset(d.numpy.name for d in DTYPES.values() if d.numpy.kind != "O")
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def loads(body: bytes | memoryview, what: str = "the request body") -> Any:
    """Parse a JSON body; broken JSON is a :class:`MalformedInputError` saying where it broke.

    ``what`` names the document in the message (the part of a body it is, for a framed one).
    """
    if not body:
        raise MalformedInputError(f"{what} is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MalformedInputError(f"{what} is not valid JSON: {e}") from None


def jsonable(array: np.ndarray) -> Any:
    """An array as orjson can write it: the array itself when its dtype allows, else nested lists."""
    if array.dtype.name in _NATIVE_NUMPY:
        return np.ascontiguousarray(array)
    return array.tolist()


def dumps(document: Any) -> bytes:
    """Serialize a response document (numpy arrays allowed)."""
    return orjson.dumps(document, option=_DUMP_OPTIONS)
