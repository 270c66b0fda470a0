"""Orphan objects: what an artifact root holds that the database no longer refers to.

Pure over :class:`~quayside.artifacts.store.ArtifactStore`, for a future ``quayside gc``:
the caller reads the references from the database (run artifact folders, registered
package folders, load-test report folders) and hands them in. A reference names an
object or a folder of objects; an object is referenced when its key or one of its
folders is.

Writers store an object first and insert the row that refers to it after, so an object
written moments ago may have no row yet: objects younger than ``min_age`` (an hour by
default) are never orphans. Read the references before listing, then nothing written
before the references were read can be mistaken for an orphan, whatever ``min_age``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from quayside.artifacts.keys import check_prefix
from quayside.artifacts.store import ArtifactStore, ObjectInfo

DEFAULT_MIN_AGE = timedelta(hours=1)
"""How old an unreferenced object must be to count as an orphan (see the module docs)."""


def find_orphans(
    store: ArtifactStore,
    prefix: str,
    referenced: Iterable[str],
    *,
    min_age: timedelta = DEFAULT_MIN_AGE,
    now: datetime | None = None,
) -> Iterator[ObjectInfo]:
    """The objects under ``prefix`` that no reference covers and that are older than ``min_age``."""
    references = {check_prefix(reference) for reference in referenced}
    cutoff = (now or datetime.now(UTC)) - min_age
    for info in store.list(prefix):
        if info.modified <= cutoff and not _covered(info.key, references):
            yield info


def delete_orphans(
    store: ArtifactStore,
    prefix: str,
    referenced: Iterable[str],
    *,
    dry_run: bool = False,
    min_age: timedelta = DEFAULT_MIN_AGE,
    now: datetime | None = None,
) -> list[ObjectInfo]:
    """Delete the orphans under ``prefix`` (none with ``dry_run``); returns them, sorted by key."""
    orphans = list(find_orphans(store, prefix, referenced, min_age=min_age, now=now))
    if not dry_run:
        for info in orphans:
            store.delete(info.key)
    return orphans


def _covered(key: str, references: set[str]) -> bool:
    """Whether ``key`` or one of its folders is among ``references``."""
    if key in references:
        return True
    parts = key.split("/")
    return any("/".join(parts[:depth]) in references for depth in range(1, len(parts)))
