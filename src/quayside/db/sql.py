"""The SQL vocabulary tracking and the registry share: id columns, lifecycle states, times, ON CONFLICT inserts.

Each component declares its own tables; what they have in common is spelled once here,
so that the two stores cannot drift apart in how they store an id, a time or a soft delete.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

# BIGINT autoincrement is not an alias of ROWID in SQLite; INTEGER is.
BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit autoincrement primary key (SQLite's ``INTEGER``, so that it stays the row id there)."""


class Lifecycle(StrEnum):
    """Whether an experiment, a run or a model version is live or soft-deleted; stored as its value."""

    ACTIVE = "active"
    DELETED = "deleted"


def now_ms() -> int:
    """The current time in milliseconds since the epoch, as every table stores times."""
    return int(time.time() * 1000)


def on_conflict_insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert | None:
    """An ``INSERT`` into ``table`` in the session's dialect, which takes ``on_conflict_do_nothing``/``_update``.

    SQLite and PostgreSQL have ``ON CONFLICT``; for any other dialect this is ``None`` and
    the caller takes another way (or refuses).
    """
    dialect = session.get_bind().dialect.name
    # The dialect modules load only when a store first needs them.
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return None
    return insert(table)
