"""LocalArtifactStore: objects as plain files under one directory, each with a digest record beside it.

The object under ``runs/abc/model.onnx`` is the file ``ROOT/runs/abc/model.onnx``, byte for
byte, so every tool (and every writer that predates this package) reads it as before. Its
sha256 lies beside it, in ``model.onnx.quayside-sha256`` (:data:`~quayside.artifacts.keys.RECORD_SUFFIX`),
a small JSON record.

Why a record file, not an extended attribute: ``os.setxattr`` does not exist on macOS, where
people run Quayside on their laptops; user attributes are refused or dropped by some file
systems (older tmpfs, many NFS mounts) and silently lost by ``cp``, ``tar`` and ``rsync``
without ``-X``, i.e. by the very backups an artifact root is restored from; and a record
file is plain to see and to check with ``sha256sum``.

What an attribute gives for free, that a file and its record change together, the record
buys back by naming the file it describes by inode number: it holds the new file's entry
(inode, size, sha256) and the entry of the file it replaces. A put renames the record into
place, then the file; so a reader, which opens the file first and reads the record after,
finds its file's entry whichever side of the two renames it falls on, and a put that dies
between them leaves the old file still described. A record whose entries name no inode of
the file belongs to a root copied by a tool that renumbers inodes: its newest entry is used,
since a copy keeps the bytes. Puts of one folder hold a ``flock`` on it across the two
renames, so two puts of one key cannot cross them.

Writes land in a locked temporary file in the root's scratch folder (:mod:`quayside.scratch`:
inside the root, so on its file system and the rename is atomic) and are fsynced, renamed
into place as above, and the folder fsynced. The file's rename is the moment the object
appears, complete; a put that fails, or a process that dies, leaves no object (at most a
record without a file, which nothing reads and the next put of that key replaces), and a
server sweeps the dead writers' temporary files when it starts. The scratch folder is used
rather than the destination's folder so that the sweep finds what a crash left without
walking the whole root, and a listing never meets a half-written file. Objects written
without this store (no record) are read unverified, and ``stat`` gives them no digest.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat as stat_mode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast

from quayside import scratch
from quayside.artifacts.keys import RECORD_SUFFIX, check_key, check_prefix
from quayside.artifacts.store import ArtifactStore, ObjectInfo
from quayside.artifacts.streams import ObjectReader, SizeCheck, copy_hashing, resolve_range
from quayside.errors import NotFoundError, PackageIntegrityError, UnavailableError, UsageError
from quayside.names import shown

_READ_TRIES = 2


@dataclass(frozen=True)
class _Entry:
    """What a record says of one file: its inode number, size and sha256."""

    inode: int
    size: int
    sha256: str


class LocalArtifactStore(ArtifactStore):
    """Objects as files under ``root`` (created on the first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    @property
    def description(self) -> str:
        return f"local directory {self.root}"

    # --- writing -------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, size: int | None = None) -> ObjectInfo:
        path = self._path(key)
        sizes = SizeCheck(key, size)
        if path.is_dir():
            raise UsageError(f"artifact key {shown(key)} is a folder of other artifacts")
        with self._os_errors("store", key):
            data = scratch.TempFile(self.root, "artifact")
        record: scratch.TempFile | None = None
        placed = committed = False
        try:
            # The source's own errors pass as they are; only the root's become UnavailableError.
            sha256 = copy_hashing(stream, self._guarded_write(data.handle, key), sizes)
            with self._os_errors("store", key):
                data.handle.flush()
                entry = _Entry(os.fstat(data.handle.fileno()).st_ino, sizes.seen, sha256)
                self._make_parent(path, key)
                record = scratch.TempFile(self.root, "record")
                with _folder_lock(path.parent) as folder:
                    record.handle.write(_encode([entry, *_current_entry(path, key)]))
                    record.commit(_record_path(path))
                    placed = True
                    data.commit(path)
                    committed = True
                    os.fsync(folder)
                modified = path.stat().st_mtime
        except BaseException:
            data.abort()
            if record is not None:
                record.abort()
            if placed and not committed and not path.exists():  # a record of no file
                _record_path(path).unlink(missing_ok=True)
            raise
        return ObjectInfo(key, sizes.seen, sha256, datetime.fromtimestamp(modified, UTC))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir() and not path.is_symlink():
            return
        with self._os_errors("delete", key):
            if not path.parent.is_dir():
                return
            with _folder_lock(path.parent):
                path.unlink(missing_ok=True)
                _record_path(path).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        prefix = check_prefix(prefix)
        if not prefix:
            return super().delete_prefix(prefix)  # refuses, with the reason
        folder = self._path(prefix)
        removed = sum(1 for _ in self.list(prefix))
        if folder.is_dir() and not folder.is_symlink():
            with self._os_errors("delete", prefix):
                shutil.rmtree(folder)
        return removed

    # --- reading -------------------------------------------------------------------------

    def open(self, key: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        path = self._path(key)
        handle, entry = self._open_with_entry(path, key)
        try:
            size = os.fstat(handle.fileno()).st_size
            first, stop = resolve_range(key, size, start, end)
            if entry is not None and entry.size != size:
                raise PackageIntegrityError(
                    f"artifact {shown(key)} is {size} bytes, not the {entry.size} recorded when it was stored: "
                    "it was altered or damaged; restore it from a copy or store it again"
                )
            whole = first == 0 and stop == size
            handle.seek(first)
            sha256 = entry.sha256 if whole and entry is not None else None
            return cast(BinaryIO, ObjectReader(handle, key=key, length=stop - first, sha256=sha256))
        except BaseException:
            handle.close()
            raise

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            status = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat_mode.S_ISREG(status.st_mode):
            return None
        entry = _entry_for(_read_record(path, key), status.st_ino)
        sha256 = entry.sha256 if entry is not None else None
        return ObjectInfo(key, status.st_size, sha256, datetime.fromtimestamp(status.st_mtime, UTC))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        prefix = check_prefix(prefix)
        base = self._path(prefix) if prefix else self.root
        keys = []
        for directory, dirs, files in os.walk(base):
            here = Path(directory)
            if here == self.root:
                dirs[:] = [name for name in dirs if name != scratch.SCRATCH_DIR]
            relative = here.relative_to(self.root).as_posix()
            for name in files:
                if name.endswith(RECORD_SUFFIX) or (here / name).is_symlink():
                    continue
                keys.append(name if relative == "." else f"{relative}/{name}")
        for key in sorted(keys):
            try:
                status = (self.root / key).stat()
            except FileNotFoundError:  # deleted since the walk
                continue
            yield ObjectInfo(key, status.st_size, None, datetime.fromtimestamp(status.st_mtime, UTC))

    def check(self) -> None:
        try:
            probe = scratch.TempFile(self.root, "probe")
            try:
                probe.handle.write(b"quayside")
                probe.handle.flush()
                os.fsync(probe.handle.fileno())
            finally:
                probe.abort()
        except OSError as e:
            raise UsageError(
                f"the local artifact root cannot be created or written ({e.strerror or type(e).__name__}): "
                "fix its permissions or set QUAYSIDE_ARTIFACT_ROOT to another directory",
                detail=f"path {self.root}",
            ) from None

    def local_path(self, key: str) -> Path:
        """Where the object (or folder of objects) ``key`` lies on this machine, for readers that need a path."""
        return self._path(key)

    # --- helpers -------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file of ``key``, refused if a symlink inside the root would carry it outside."""
        path = self.root / check_key(key)
        base = self.root.resolve()
        target = path.resolve()
        if target != base and not target.is_relative_to(base):
            raise UsageError(f"artifact key {shown(key)} leads outside the artifact root")
        return path

    def _make_parent(self, path: Path, key: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"artifact key {shown(key)} lies under another artifact, not a folder") from None

    def _open_with_entry(self, path: Path, key: str) -> tuple[BinaryIO, _Entry | None]:
        """The object's file, opened, and its record's entry for that very file (see the module docs)."""
        for attempt in range(_READ_TRIES):
            try:
                handle = path.open("rb")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise NotFoundError(f"there is no artifact {shown(key)}") from None
            try:
                entries = _read_record(path, key)
            except BaseException:
                handle.close()
                raise
            inode = os.fstat(handle.fileno()).st_ino
            if not entries or any(entry.inode == inode for entry in entries) or attempt == _READ_TRIES - 1:
                return handle, _entry_for(entries, inode)
            handle.close()  # two puts passed between opening and reading the record: once more
        raise AssertionError("unreachable")

    def _guarded_write(self, handle: BinaryIO, key: str) -> Callable[[bytes], None]:
        def write(chunk: bytes) -> None:
            with self._os_errors("store", key):
                handle.write(chunk)

        return write

    @contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        """A file-system failure (a full disk, a permission) as an error that names the key, not the path."""
        try:
            yield
        except OSError as e:
            raise UnavailableError(
                f"could not {action} artifact {shown(key)}: the artifact root failed "
                f"({e.strerror or type(e).__name__})",
                detail=f"path {self.root}",
            ) from e


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def _encode(entries: list[_Entry]) -> bytes:
    listed = [{"inode": e.inode, "size": e.size, "sha256": e.sha256} for e in entries]
    return json.dumps({"version": 1, "files": listed}).encode()


def _read_record(path: Path, key: str) -> list[_Entry]:
    """The entries of the record beside ``path``, newest first; none without a record."""
    try:
        raw = _record_path(path).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return []
    try:
        files = json.loads(raw)["files"]
        return [_Entry(int(f["inode"]), int(f["size"]), str(f["sha256"])) for f in files]
    except (ValueError, KeyError, TypeError):
        raise PackageIntegrityError(
            f"the digest record of artifact {shown(key)} is damaged; store the artifact again"
        ) from None


def _entry_for(entries: list[_Entry], inode: int) -> _Entry | None:
    """The entry of the file with ``inode``, else the newest (a copied root renumbers inodes)."""
    for entry in entries:
        if entry.inode == inode:
            return entry
    return entries[0] if entries else None


def _current_entry(path: Path, key: str) -> list[_Entry]:
    """The entry of the file now at ``path``, kept in the next record for readers that hold it."""
    try:
        inode = path.stat().st_ino
        entries = _read_record(path, key)
    except (FileNotFoundError, NotADirectoryError, PackageIntegrityError):  # gone, or a damaged record
        return []
    return [entry for entry in entries if entry.inode == inode][:1]


@contextmanager
def _folder_lock(directory: Path) -> Iterator[int]:
    """An exclusive ``flock`` on a folder, held while a record and its file change together.

    Two puts of one key each rename a record, then a file; without the lock their renames
    could interleave and leave one put's file with the other's record. Readers take no lock:
    they match a record to its file by inode (see the module docs).
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        # Unlocked explicitly: under gevent's patching (a load test's process) os.close of a
        # directory's fd is deferred to the hub, so the lock would outlive it and the next put block.
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
