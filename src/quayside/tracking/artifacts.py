"""Run artifacts as objects of an artifact store, under the keys ``runs/<run id>/<path>``.

The store (:class:`quayside.artifacts.ArtifactStore`: a local directory or an S3 bucket)
makes every write whole or nothing and checks each object's sha256 on a whole read;
this module adds what is particular to runs. Every path is checked before any I/O:
nothing absolute, no ``..``, no control characters, no component over
:data:`MAX_COMPONENT_BYTES` bytes, no name reserved for uploads in progress. A file
never lies under another file, and a path that is a folder is never overwritten by a
file, whichever store holds them. Nothing here hands out a local path of an artifact:
files are read as streams (whole or by range) and copied out, streamed, to a local
destination (:meth:`RunArtifacts.copy_out`).
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, cast

from quayside import scratch
from quayside.artifacts import ArtifactStore, ObjectInfo
from quayside.errors import NotFoundError, PayloadTooLargeError, UsageError
from quayside.names import shown
from quayside.tracking.entities import ArtifactInfo

TEMP_PREFIX = ".quayside-upload-"
"""The temporary names of older releases, beside the destination (swept once, reserved still)."""
RUN_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
RUNS_PREFIX = "runs"
"""The folder of the artifact store that holds every run's files."""
CHUNK = 1 << 20
MAX_PATH_LENGTH = 1024
"""The longest artifact path, in characters (the logged-model table's path column holds 1024)."""
MAX_COMPONENT_BYTES = 255
"""The longest component of an artifact path, in UTF-8 bytes (what the common file systems allow)."""


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def check_artifact_path(path: str, *, allow_root: bool = False) -> PurePosixPath:
    """A relative artifact path with no ``..``, no absolute start and no odd characters, or a 400."""
    if path in ("", ".") and allow_root:
        return PurePosixPath()
    if not path or "\\" in path or "\x00" in path:
        raise UsageError(f"artifact path {shown(path)} is not a plain relative path")
    _check_characters(path)
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        raise UsageError(f"artifact path '{path}' is absolute; artifact paths are relative to the run")
    if any(part in ("..", ".") for part in path.split("/")) or not pure.parts:
        raise UsageError(f"artifact path '{path}' escapes the run's artifact directory")
    if pure.name.startswith(TEMP_PREFIX):
        raise UsageError(f"artifact path '{path}' uses a name reserved for uploads in progress")
    return pure


def _check_characters(path: str) -> None:
    """Refuse what the file system cannot hold: over-long paths or components, controls, lone surrogates."""
    if len(path) > MAX_PATH_LENGTH:
        raise UsageError(
            f"artifact path {shown(path)} is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}"
        )
    for character in path:
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise UsageError(
                f"artifact path {shown(path)} holds the control character U+{ord(character):04X}"
            )
    for part in path.split("/"):
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise UsageError(
                f"artifact path {shown(path)} has a component of {len(part.encode())} bytes; "
                f"the limit is {MAX_COMPONENT_BYTES}"
            )


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise UsageError(f"{shown(str(run_id))} is not a run id")
    return run_id


class RunArtifacts:
    """The files of runs in ``store``; ``work_dir`` is a local directory for copies in progress."""

    def __init__(self, store: ArtifactStore, work_dir: Path, max_bytes: int | None = None) -> None:
        self.store = store
        self.work_dir = Path(work_dir).expanduser()
        self.max_bytes = max_bytes

    def run_key(self, run_id: str) -> str:
        """The folder of the store holding one run's files."""
        return f"{RUNS_PREFIX}/{check_run_id(run_id)}"

    def key(self, run_id: str, path: str, *, allow_root: bool = False) -> str:
        """The object key of artifact ``path`` of a run (the run's folder for the root)."""
        relative = check_artifact_path(path, allow_root=allow_root)
        base = self.run_key(run_id)
        return f"{base}/{relative.as_posix()}" if relative.parts else base

    # --- writing -------------------------------------------------------------------------

    def write(self, run_id: str, path: str, stream: Readable, *, size: int | None = None) -> ArtifactInfo:
        """Store what ``stream`` yields as artifact ``path``, refusing more than ``max_bytes``.

        The object appears only once complete; a write that fails leaves the previous file, or none.
        """
        key = self.key(run_id, path)
        if size is not None and self.max_bytes is not None and size > self.max_bytes:
            raise self._too_large(path)
        self._check_placement(run_id, path, key)
        limited = _LimitedReader(stream, lambda: self._too_large(path), self.max_bytes)
        info = self.store.put(key, cast(BinaryIO, limited), size=size)
        return ArtifactInfo(path, False, info.size)

    def write_stream(self, run_id: str, path: str, chunks: Iterable[bytes]) -> ArtifactInfo:
        """Store the chunks as artifact ``path`` (see :meth:`write`)."""
        return self.write(run_id, path, ChunkReader(chunks))

    def write_file(self, run_id: str, path: str, source: Path) -> ArtifactInfo:
        with Path(source).open("rb") as handle:
            return self.write(run_id, path, handle, size=os.fstat(handle.fileno()).st_size)

    def _check_placement(self, run_id: str, path: str, key: str) -> None:
        """Refuse a file where a folder is, or under a file: the same answer from every store."""
        if next(iter(self.store.list(key)), None) is not None:
            raise UsageError(f"artifact path '{path}' is a directory")
        parts = PurePosixPath(path).parts
        base = self.run_key(run_id)
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if self.store.exists(f"{base}/{parent}"):
                raise UsageError(f"artifact path '{path}' is under '{parent}', which is a file")

    def _too_large(self, path: str) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"artifact '{path}' is over the {self.max_bytes}-byte upload limit (QUAYSIDE_MAX_ARTIFACT_BYTES)"
        )

    # --- reading -------------------------------------------------------------------------

    def stat(self, run_id: str, path: str) -> ObjectInfo:
        """The size, sha256 and time of writing of an artifact file, or a :class:`NotFoundError`."""
        info = self.store.stat(self.key(run_id, path))
        if info is None:
            raise NotFoundError(f"run '{run_id}' has no artifact file '{path}'")
        return info

    def open(self, run_id: str, path: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        """A stream of an artifact file, or of its bytes ``[start:end]``; a whole read is checked
        against its sha256 (see :class:`quayside.artifacts.ArtifactStore`). Close it after use."""
        key = self.key(run_id, path)
        try:
            return self.store.open(key, start=start, end=end)
        except NotFoundError:
            raise NotFoundError(f"run '{run_id}' has no artifact file '{path}'") from None

    def exists(self, run_id: str, path: str) -> bool:
        """Whether ``path`` is a file or a folder of files among the run's artifacts."""
        key = self.key(run_id, path)
        return self.store.exists(key) or next(iter(self.store.list(key)), None) is not None

    def list(self, run_id: str, path: str = "", *, recursive: bool = False) -> list[ArtifactInfo]:
        """Files and directories under ``path`` (with their sizes), sorted; uploads in progress are not listed."""
        key = self.key(run_id, path, allow_root=True)
        if path not in ("", "."):
            info = self.store.stat(key)
            if info is not None:
                return [ArtifactInfo(path, False, info.size)]
        base = self.run_key(run_id)
        depth = 0 if key == base else key.count("/") - base.count("/")
        entries = _entries((info.key[len(base) + 1 :], info.size) for info in self._files(key))
        # Below the folder listed (its own parents are not), and only its children unless recursive.
        entries = {
            p: e for p, e in entries.items() if p.count("/") == depth or (recursive and p.count("/") > depth)
        }
        if not entries and path not in ("", "."):
            raise NotFoundError(f"run '{run_id}' has no artifact '{path}'")
        return sorted(entries.values(), key=lambda entry: PurePosixPath(entry.path).parts)

    def _files(self, folder_key: str) -> Iterator[ObjectInfo]:
        for info in self.store.list(folder_key):
            if not PurePosixPath(info.key).name.startswith(TEMP_PREFIX):
                yield info

    # --- copying out ---------------------------------------------------------------------

    def copy_out(self, run_id: str, path: str, destination: Path) -> Path:
        """Copy an artifact file or directory into ``destination`` (a local directory, created when
        missing), streaming, and return the copy's path: ``destination/<last name of path>``, or
        ``destination/<run id>`` for all of the run's artifacts. Every file is checked against its
        sha256 on the way; a file whose check fails is not left behind."""
        key = self.key(run_id, path, allow_root=True)
        destination = Path(destination)
        relative = PurePosixPath(path) if path not in ("", ".") else PurePosixPath()
        target = destination / (relative.name if relative.parts else run_id)
        if relative.parts and self.store.exists(key):
            destination.mkdir(parents=True, exist_ok=True)
            self._fetch(key, target)
            return target
        files = list(self._files(key))
        if not files and relative.parts:
            raise NotFoundError(f"run '{run_id}' has no artifact '{path}'")
        target.mkdir(parents=True, exist_ok=True)
        for info in files:
            file = target.joinpath(*info.key[len(key) + 1 :].split("/"))
            file.parent.mkdir(parents=True, exist_ok=True)
            self._fetch(info.key, file)
        return target

    @contextmanager
    def local_copy(self, run_id: str, path: str) -> Iterator[Path]:
        """A local copy of artifact ``path`` (file or folder) for the ``with`` block, in the work
        directory's scratch folder (removed after, or by a server's sweep if the process dies)."""
        with scratch.temporary_directory(self.work_dir, "artifact-copy") as directory:
            yield self.copy_out(run_id, path, directory)

    def _fetch(self, key: str, target: Path) -> None:
        """Stream one object to ``target`` (a temporary name beside it, then a rename)."""
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            with self.store.open(key) as source, partial.open("wb") as sink:
                while chunk := source.read(CHUNK):
                    sink.write(chunk)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def _entries(files: Iterable[tuple[str, int]]) -> dict[str, ArtifactInfo]:
    """Every file of ``(path, size)`` and every folder above one, by path."""
    entries: dict[str, ArtifactInfo] = {}
    for path, size in files:
        parts = path.split("/")
        for stop in range(1, len(parts)):
            folder = "/".join(parts[:stop])
            entries[folder] = ArtifactInfo(folder, True, None)
        entries[path] = ArtifactInfo(path, False, size)
    return entries


class ChunkReader:
    """An iterable of byte chunks as a readable stream (what :meth:`ArtifactStore.put` takes)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")

    def read(self, size: int = -1, /) -> bytes:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buffer = memoryview(bytes(chunk))
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, memoryview(b"")
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data.tobytes()


class _LimitedReader:
    """A stream that raises ``too_large()`` once it has yielded more than ``limit`` bytes."""

    def __init__(self, source: Readable, too_large: Callable[[], Exception], limit: int | None) -> None:
        self._source = source
        self._too_large = too_large
        self._limit = limit
        self._seen = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._seen += len(data)
        if self._limit is not None and self._seen > self._limit:
            raise self._too_large()
        return data
