"""``quayside gc``: what the artifact root holds that no database row refers to, listed and removed.

Tracking and the registry share one artifact root (a directory or an S3 bucket and prefix),
each component under its own folders:

- ``registry/<model>/<key>/``: a registered version's package copy, named by its row;
- ``loadtests/<model>/<version>/<id>/``: a load-test report's files, named by its row;
- ``runs/<run_id>/``: a run's artifacts, which belong to the run while its row exists;
- the stores' own temporary objects: a local root's scratch folder (``.quayside-tmp/``), whose
  entries a live writer holds locked, and an S3 root's staging objects and open multipart
  uploads (see :mod:`quayside.artifacts.s3`).

Every writer stores its objects first and inserts the row after, so a crash leaves at most
objects without a row, never a row without its objects; those objects are what this finds.
The registry's references are read before the root is listed, and runs are looked up by the
ids the listing found (a run's row exists before any of its artifacts), so nothing written
before the listing can be taken for an orphan; objects younger than ``min_age`` are skipped,
for writers whose row is still on its way (:mod:`quayside.artifacts.gc`). Folders other than
these three are not Quayside's and are never touched.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from quayside import scratch
from quayside.artifacts import ArtifactStore, LocalArtifactStore, ObjectInfo, S3ArtifactStore
from quayside.artifacts.gc import DEFAULT_MIN_AGE, find_orphans
from quayside.config import Settings
from quayside.errors import NotFoundError, UsageError
from quayside.registry.artifacts import REGISTRY_DIR
from quayside.registry.loadtests import LOADTESTS_DIR
from quayside.registry.store import RegistryStore

if TYPE_CHECKING:
    from quayside.tracking.backend import TrackingBackend

RUNS_DIR = "runs"
"""The tracking store's folder of run artifacts (``runs/<run_id>/<path>``)."""

RunExists = Callable[[str], bool]


@dataclass(frozen=True)
class Garbage:
    """What a collection found (and removed, unless it was a dry run)."""

    orphans: list[ObjectInfo] = field(default_factory=list)
    """Objects under the registry's and tracking's folders that no row refers to, sorted by key."""
    temporary: list[ObjectInfo] = field(default_factory=list)
    """Temporary objects no live writer holds (keys as the store names them, inside its scratch area)."""
    deleted: bool = False

    @property
    def count(self) -> int:
        return len(self.orphans) + len(self.temporary)

    @property
    def size(self) -> int:
        """Bytes in all, orphans and temporary objects together."""
        return sum(info.size for info in [*self.orphans, *self.temporary])

    def summary(self) -> str:
        """One line: how many objects and bytes, and whether they were removed."""
        objects = f"{self.count} unreferenced object{'s' if self.count != 1 else ''} ({self.size} bytes)"
        if self.deleted:
            return f"removed {objects}"
        if not self.count:
            return "found 0 unreferenced objects (0 bytes)"
        return f"found {objects}; dry run, nothing removed: pass --delete to remove them"


def collect_garbage(
    settings: Settings,
    *,
    delete: bool = False,
    min_age: timedelta = DEFAULT_MIN_AGE,
    now: datetime | None = None,
) -> Garbage:
    """Find (and with ``delete`` remove) the unreferenced objects of the settings' database and artifact root."""
    for what, uri in (
        ("QUAYSIDE_TRACKING_URI", settings.tracking_uri),
        ("QUAYSIDE_REGISTRY_URI", settings.registry_uri),
    ):
        if uri and uri.startswith(("http://", "https://")):
            raise UsageError(
                f"quayside gc works on the database and artifact root themselves, not through a server ({what} "
                "is set): run it where QUAYSIDE_DB_URL and QUAYSIDE_ARTIFACT_ROOT name the server's"
            )
    from quayside.tracking.store import TrackingStore

    registry = RegistryStore.from_settings(settings)
    tracking = TrackingStore.from_settings(settings)
    return find_garbage(registry, _run_lookup(tracking), delete=delete, min_age=min_age, now=now)


def find_garbage(
    registry: RegistryStore,
    run_exists: RunExists,
    *,
    delete: bool = False,
    min_age: timedelta = DEFAULT_MIN_AGE,
    now: datetime | None = None,
) -> Garbage:
    """The unreferenced objects of ``registry``'s artifact store (shared with tracking, whose runs
    ``run_exists`` looks up); removed too with ``delete``."""
    store = registry.artifacts
    now = now or datetime.now(UTC)
    referenced = registry.artifact_references()  # before listing: see the module docs
    orphans = [
        *find_orphans(store, REGISTRY_DIR, referenced, min_age=min_age, now=now),
        *find_orphans(store, LOADTESTS_DIR, referenced, min_age=min_age, now=now),
        *_run_orphans(store, run_exists, min_age=min_age, now=now),
    ]
    temporary = _temporary(store, min_age=min_age, now=now)
    if delete:
        for info in orphans:
            store.delete(info.key)
            if isinstance(store, LocalArtifactStore):
                _prune_empty(store.root, store.local_path(info.key).parent)
        temporary = _remove_temporary(store, temporary)
    return Garbage(sorted(orphans, key=lambda info: info.key), temporary, deleted=delete)


def _run_lookup(tracking: TrackingBackend) -> RunExists:
    def run_exists(run_id: str) -> bool:
        try:
            tracking.get_run(run_id)
        except NotFoundError:
            return False
        return True

    return run_exists


def _run_orphans(
    store: ArtifactStore, run_exists: RunExists, *, min_age: timedelta, now: datetime
) -> Iterable[ObjectInfo]:
    run_ids = {info.key.split("/")[1] for info in store.list(RUNS_DIR) if info.key.count("/") >= 2}
    live = {f"{RUNS_DIR}/{run_id}" for run_id in sorted(run_ids) if run_exists(run_id)}
    return find_orphans(store, RUNS_DIR, live, min_age=min_age, now=now)


def _prune_empty(root: Path, folder: Path) -> None:
    """Remove the folders an orphan lay in, up to the root, while they are empty."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): what is left is someone else's
            return
        folder = folder.parent


# --- temporary objects -------------------------------------------------------------------------


def _temporary(store: ArtifactStore, *, min_age: timedelta, now: datetime) -> list[ObjectInfo]:
    if isinstance(store, LocalArtifactStore):
        return _abandoned_scratch(store.root, now - min_age, now)
    if isinstance(store, S3ArtifactStore):
        return list(store.leftovers(older_than=now - min_age))
    return []


def _remove_temporary(store: ArtifactStore, found: list[ObjectInfo]) -> list[ObjectInfo]:
    if isinstance(store, LocalArtifactStore):
        removed = set(scratch.sweep(store.root))  # removes only what no live writer holds, found or not
        return [info for info in found if info.key.split("/", 1)[-1] in removed]
    if isinstance(store, S3ArtifactStore):
        for info in found:
            store.remove_leftover(info.key)
    return found


def _abandoned_scratch(root: Path, cutoff: datetime, now: datetime) -> list[ObjectInfo]:
    """The entries of a local root's scratch folder older than ``cutoff`` that no living process holds
    (what a sweep removes)."""
    directory = root / scratch.SCRATCH_DIR
    if not directory.is_dir():
        return []
    found = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        modified = datetime.fromtimestamp(entry.lstat().st_mtime, UTC)
        if modified > cutoff:
            continue
        if entry.name.startswith(scratch.CLAIM_PREFIX):
            abandoned = (now - modified).total_seconds() > scratch.CLAIM_GRACE_S
        else:
            abandoned = not _held(entry)
        if abandoned:
            found.append(ObjectInfo(f"{scratch.SCRATCH_DIR}/{entry.name}", _size(entry), None, modified))
    return found


def _held(entry: Path) -> bool:
    """Whether a living process holds the entry's lock (the writer's, see :mod:`quayside.scratch`)."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone meanwhile, or a symlink: nothing of a writer's
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock at once
    return False


def _size(entry: Path) -> int:
    if not entry.is_dir():
        return entry.lstat().st_size
    return sum(path.lstat().st_size for path in entry.rglob("*") if path.is_file() and not path.is_symlink())
