"""The ArtifactStore interface: objects under keys, written whole and read whole or by range.

Every store keeps the same promises, so a writer never knows which one it has:

- :meth:`~ArtifactStore.put` streams: it reads the source in bounded chunks (never the
  whole object in memory), computes the sha256 on the way, and the object becomes
  visible only once complete; a put that fails leaves nothing visible.
- :meth:`~ArtifactStore.open` reads whole or a byte range (``start`` inclusive, ``end``
  exclusive, as in ``data[start:end]``). A whole read checks the bytes against the
  sha256 recorded at put time and raises :class:`~quayside.errors.PackageIntegrityError`
  when the stream ends on a mismatch, so a caller that copies the stream somewhere must
  treat the copy as void when reading raises.
- Keys follow :mod:`quayside.artifacts.keys`, checked before any I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from quayside.artifacts.keys import check_prefix
from quayside.errors import UsageError


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, size in bytes, sha256 (hex) and when it was written (UTC)."""

    key: str
    size: int
    sha256: str | None
    """The digest recorded at put time; None in listings (see :meth:`ArtifactStore.list`) and for
    objects another tool wrote."""
    modified: datetime


class ArtifactStore(ABC):
    """Objects under keys in one artifact root (a local directory or an S3 bucket and prefix)."""

    @property
    @abstractmethod
    def description(self) -> str:
        """What the store is, for messages and logs (never a secret)."""

    @abstractmethod
    def put(self, key: str, stream: BinaryIO, *, size: int | None = None) -> ObjectInfo:
        """Store what ``stream`` yields under ``key``, replacing any object there.

        ``size``, when given, is checked: a stream that yields more or fewer bytes fails
        the put with a :class:`~quayside.errors.UsageError` and stores nothing.
        """

    @abstractmethod
    def open(self, key: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        """A readable binary stream of the object, or of ``data[start:end]``; close it after use.

        A missing object is a :class:`~quayside.errors.NotFoundError`; a range that reaches past
        the end, a :class:`~quayside.errors.RangeNotSatisfiableError`.
        """

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size, sha256 and time of writing, or None when there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing one does nothing."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects under the folder ``prefix`` (``""``: all), sorted by key.

        Entries carry key, size and time; ``sha256`` is None (a listing would cost one request
        per object on S3): :meth:`stat` an object for its digest.
        """

    @abstractmethod
    def check(self) -> None:
        """Prove the store usable now, or raise a :class:`~quayside.errors.UsageError` or
        :class:`~quayside.errors.UnavailableError` that says what to fix."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return self.stat(key) is not None

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder ``prefix``; returns how many were removed."""
        prefix = check_prefix(prefix)
        if not prefix:
            raise UsageError("delete_prefix needs a folder: it never empties a whole artifact root")
        removed = 0
        for info in self.list(prefix):
            self.delete(info.key)
            removed += 1
        return removed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"
