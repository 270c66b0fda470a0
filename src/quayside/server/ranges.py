"""HTTP byte ranges (RFC 9110 §14): a ``Range`` header read against an object's size.

Only one range of bytes is served: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n``. A header
in another unit, with several ranges, or that does not parse is ignored, as the RFC lets a
server do, and the whole object is answered (200). A range that starts past the end (or
asks for the last 0 bytes) cannot be satisfied: 416, with ``Content-Range: bytes */size``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from quayside.errors import RangeNotSatisfiableError

_SINGLE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """The bytes ``[start:end]`` of an object of ``size`` bytes (``end`` exclusive)."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` value of a 206 answer (inclusive last byte, as HTTP writes it)."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


class UnsatisfiableRange(RangeNotSatisfiableError):
    """A range that no byte of the object is in (416); :attr:`size` goes in ``Content-Range``."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` asks for in an object of ``size`` bytes; None to answer it whole."""
    if header is None:
        return None
    match = _SINGLE.fullmatch(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange(f"the range {header.strip()!r} asks for no bytes of {size}", size)
        return ByteRange(max(size - suffix, 0), size, size)
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None  # a range that ends before it starts is invalid, so ignored (RFC 9110 §14.1.1)
    if start >= size:
        raise UnsatisfiableRange(
            f"the range {header.strip()!r} starts past the end of the artifact, which is {size} bytes", size
        )
    return ByteRange(start, end, size)
