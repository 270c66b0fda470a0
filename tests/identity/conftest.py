"""The identity suite runs on SQLite and PostgreSQL: the shared databases, or a fresh one per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from quayside.db.engine import Sessions
from quayside.db.sql import now_ms
from quayside.identity.store import IdentityStore
from tests.db import fixtures

# Shared fixtures (one PostgreSQL database for the whole session).
database_url = fixtures.database_url
postgres_database_url = fixtures.postgres_database_url
sqlite_database_url = fixtures.sqlite_database_url


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Clock:
    """A clock the test moves (milliseconds since the epoch), for expiries and login waits."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url: str, clock: Clock) -> IdentityStore:
    return IdentityStore(Sessions(database_url, "identity"), clock=clock)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own, so it can read every row of every table."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = fixtures.create_postgres_database()
    yield fixtures.postgres_url(name)
    fixtures.drop_postgres_database(name)
