"""The stream plumbing both stores share: reading a source in bounded chunks, byte ranges, and
the reader that checks an object's sha256 as it is read."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any, Protocol

from quayside.errors import PackageIntegrityError, RangeNotSatisfiableError, UsageError
from quayside.names import shown

CHUNK = 1 << 20
"""How much a store reads from a source, or hands to a sink, at a time."""


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def read_up_to(stream: Readable, size: int) -> bytearray:
    """Up to ``size`` bytes of ``stream``, fewer only at its end, in one buffer grown chunk by chunk.

    Growing one ``bytearray`` (realloc, in place for large blocks) instead of joining pieces keeps
    the peak at one buffer, not two; a raw stream's short reads are read on from.
    """
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


class SizeCheck:
    """Counts the bytes of a put and refuses a stream that yields more or fewer than declared."""

    def __init__(self, key: str, declared: int | None) -> None:
        if declared is not None and (
            isinstance(declared, bool) or not isinstance(declared, int) or declared < 0
        ):
            raise UsageError(f"the size declared for artifact {shown(key)} must be a whole number >= 0")
        self.key = key
        self.declared = declared
        self.seen = 0

    def add(self, count: int) -> None:
        self.seen += count
        if self.declared is not None and self.seen > self.declared:
            raise UsageError(
                f"the stream for artifact {shown(self.key)} yields more than the {self.declared} bytes declared"
            )

    def finish(self) -> None:
        if self.declared is not None and self.seen != self.declared:
            raise UsageError(
                f"the stream for artifact {shown(self.key)} ended after {self.seen} bytes; "
                f"{self.declared} were declared"
            )


def copy_hashing(stream: Readable, write: Callable[[bytes], Any], sizes: SizeCheck) -> str:
    """Copy ``stream`` to ``write`` chunk by chunk; returns the sha256 (hex) of what was copied."""
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        sizes.add(len(chunk))
        digest.update(chunk)
        write(chunk)
    sizes.finish()
    return digest.hexdigest()


def resolve_range(key: str, size: int, start: int | None, end: int | None) -> tuple[int, int]:
    """``(start, end)`` of ``data[start:end]`` for an object of ``size`` bytes, checked."""
    first = 0 if start is None else start
    stop = size if end is None else end
    for name, value in (("start", first), ("end", stop)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"the {name} of a range must be a whole number >= 0, not {value!r}")
    if first > size or stop > size:
        raise RangeNotSatisfiableError(
            f"the range {first}:{stop} reaches past the end of artifact {shown(key)}, which is {size} bytes"
        )
    if first > stop:
        raise UsageError(f"the range {first}:{stop} of artifact {shown(key)} starts after it ends")
    return first, stop


class ObjectReader(io.RawIOBase):
    """``length`` bytes of ``source``; with ``sha256``, checked against it when the last byte is read.

    A source that ends early, or bytes whose digest differs, raise
    :class:`~quayside.errors.PackageIntegrityError` from the read that reaches the end.
    """

    def __init__(self, source: Readable | None, *, key: str, length: int, sha256: str | None = None) -> None:
        super().__init__()
        self._source = source
        self._key = key
        self._length = length
        self._remaining = length
        self._expected = sha256
        self._digest = hashlib.sha256() if sha256 is not None else None
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._remaining == 0:
            self._finish()
            return 0
        view = memoryview(buffer).cast("B")
        data = self._source.read(min(len(view), self._remaining)) if self._source is not None else b""
        if not data:
            raise PackageIntegrityError(
                f"artifact {shown(self._key)} ended after {self._length - self._remaining} "
                f"of its {self._length} bytes: it was cut short or replaced while being read"
            )
        view[: len(data)] = data
        self._remaining -= len(data)
        if self._digest is not None:
            self._digest.update(data)
        if self._remaining == 0:
            self._finish()
        return len(data)

    def _finish(self) -> None:
        if self._finished or self._digest is None:
            return
        if self._digest.hexdigest() != self._expected:
            raise PackageIntegrityError(
                f"artifact {shown(self._key)} does not match the sha256 recorded when it was stored: "
                "it was altered or damaged; restore it from a copy or store it again"
            )
        self._finished = True

    def close(self) -> None:
        if not self.closed and self._source is not None and hasattr(self._source, "close"):
            self._source.close()
        super().close()
