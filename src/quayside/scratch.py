"""Temporary files and folders of writes in progress, and sweeping up those whose writer died.

An artifact upload or a registered package copy lands under
``<artifact root>/.quayside-tmp/`` and is renamed into place when complete; the
folder is inside the artifact root, so the rename stays on one file system and is
atomic. For as long as an entry exists, the process writing it holds an exclusive
``flock`` on it, and the kernel drops that lock when the process dies, ``kill -9``
included. So :func:`sweep`, run when a server starts, removes exactly the entries
no living process holds, whichever server, container or pid namespace wrote them,
and never one that a concurrently running server is still writing.

Why a lock, not an age or a pid: a grace period either keeps what a crash left a
moment ago or cuts an upload that stalled for longer than the period; a pid in the
name names another process after pid reuse, and means nothing across containers
(each server may be pid 1 of its own namespace).

An entry is born as ``claim-*``, locked, then renamed to its working name, so an
entry under a working name is locked from its first moment. A claim lives for
microseconds; one older than :data:`CLAIM_GRACE_S` belonged to a writer that died in
between. Temporary names of older releases (beside their destination) are swept once
per artifact root by age (:data:`LEGACY_GRACE_S`), since nothing marks their writer.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

SCRATCH_DIR = ".quayside-tmp"
CLAIM_PREFIX = "claim-"
CLAIM_GRACE_S = 60.0
LEGACY_GRACE_S = 3600.0
"""How old a temporary name of an older release must be before the one-time sweep removes it."""
_LEGACY_SWEPT = ".legacy-swept"


def scratch_dir(root: Path) -> Path:
    """The artifact root's folder of writes in progress (created when missing)."""
    directory = Path(root).expanduser() / SCRATCH_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _claim(root: Path, kind: str, *, is_dir: bool) -> tuple[Path, int]:
    """A new entry of ``kind`` in the scratch folder, locked by this process: its path and the locked fd."""
    directory = scratch_dir(root)
    if is_dir:
        claim = tempfile.mkdtemp(prefix=CLAIM_PREFIX, dir=directory)
        fd = os.open(claim, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd, claim = tempfile.mkstemp(prefix=CLAIM_PREFIX, dir=directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh claim: the sweeper never locks claims
        path = directory / f"{kind}-{Path(claim).name.removeprefix(CLAIM_PREFIX)}"
        os.rename(claim, path)
    except BaseException:
        os.close(fd)
        _remove(Path(claim))
        raise
    return path, fd


class TempFile:
    """A locked temporary file: write to :attr:`handle`, then :meth:`commit` renames it into place."""

    def __init__(self, root: Path, kind: str = "upload") -> None:
        self.path, fd = _claim(root, kind, is_dir=False)
        self.handle: BinaryIO = os.fdopen(fd, "wb")

    def commit(self, target: Path) -> None:
        """Flush to disk and rename to ``target``: after this returns, the file survives a crash."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        os.replace(self.path, target)  # still locked: closing first would let a sweeper take it
        self.handle.close()

    def abort(self) -> None:
        self.path.unlink(missing_ok=True)
        if not self.handle.closed:
            self.handle.close()


class TempDir:
    """A locked temporary folder: fill :attr:`path`, then :meth:`commit` renames it into place."""

    def __init__(self, root: Path, kind: str = "staging") -> None:
        self.path, self._fd = _claim(root, kind, is_dir=True)

    def commit(self, target: Path) -> None:
        os.replace(self.path, target)
        self._release()

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextmanager
def temporary_directory(root: Path, kind: str = "spool") -> Iterator[Path]:
    """A locked scratch folder for the ``with`` block, removed at its end (or by a sweep, if the process dies)."""
    directory = TempDir(root, kind)
    try:
        yield directory.path
    finally:
        directory.abort()


def sweep(root: Path, *, legacy_prefixes: Iterable[str] = ()) -> list[str]:
    """Remove what dead writers left under ``root``; returns the names removed from the scratch folder.

    ``legacy_prefixes`` are the temporary names older releases gave their writes beside
    the destination; the first sweep of a root looks for those too (see the module docs).
    """
    root = Path(root).expanduser()
    directory = root / SCRATCH_DIR
    if not directory.is_dir():
        return []
    removed = []
    for entry in directory.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.name.startswith(CLAIM_PREFIX):
            abandoned = _age_s(entry) > CLAIM_GRACE_S and _remove(entry)
        else:
            abandoned = _remove_if_unlocked(entry)
        if abandoned:
            removed.append(entry.name)
    prefixes = tuple(legacy_prefixes)
    if prefixes and not (directory / _LEGACY_SWEPT).exists() and _sweep_legacy(root, prefixes):
        (directory / _LEGACY_SWEPT).touch()
    return removed


def _remove_if_unlocked(entry: Path) -> bool:
    """Remove ``entry`` while holding its lock, if no living process holds it."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # renamed into place meanwhile, or not an entry of ours (a symlink)
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its writer is alive
        return _remove(entry)
    finally:
        os.close(fd)


def _sweep_legacy(root: Path, prefixes: tuple[str, ...]) -> bool:
    """Remove old temporary names of older releases; True when none was left for being too recent."""
    recent = 0
    now = time.time()
    for directory, dirs, files in os.walk(root):
        if Path(directory) == root:
            dirs[:] = [d for d in dirs if d != SCRATCH_DIR]
        for name in [*dirs, *files]:
            if not name.startswith(prefixes):
                continue
            entry = Path(directory) / name
            if now - _mtime(entry) > LEGACY_GRACE_S:
                _remove(entry)
            else:
                recent += 1
        dirs[:] = [d for d in dirs if not d.startswith(prefixes)]
    return recent == 0


def _mtime(entry: Path) -> float:
    try:
        return entry.lstat().st_mtime
    except FileNotFoundError:
        return time.time()


def _age_s(entry: Path) -> float:
    return time.time() - _mtime(entry)


def _remove(entry: Path) -> bool:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError:  # gone already (another server swept it), or not ours to remove
        return False
    return True
