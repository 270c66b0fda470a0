"""The tracking suite runs every client test four ways: local store or REST server, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from quayside.config import Settings
from quayside.tracking import fluent
from quayside.tracking.client import Client
from tests.db import fixtures
from tests.db.fixtures import Server

# Shared fixtures (one PostgreSQL database and one server per database for the whole session).
database_url = fixtures.database_url
own_server = fixtures.own_server
postgres_database_url = fixtures.postgres_database_url
postgresql_server = fixtures.postgresql_server
sqlite_database_url = fixtures.sqlite_database_url
sqlite_server = fixtures.sqlite_server


@dataclass(frozen=True)
class Target:
    """Where a test's tracking goes: the settings a user would have, and where artifacts end up on disk."""

    name: str
    settings: Settings
    artifact_root: Path

    def client(self) -> Client:
        return Client(settings=self.settings)

    def env(self) -> dict[str, str]:
        """The QUAYSIDE_* variables that point a process (or the fluent API) here."""
        env = {"QUAYSIDE_HOME": str(self.settings.home)}
        if self.settings.tracking_uri:
            env["QUAYSIDE_TRACKING_URI"] = self.settings.tracking_uri
        if self.settings.db_url:
            env["QUAYSIDE_DB_URL"] = self.settings.db_url
        return env


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No QUAYSIDE_* from the developer's shell, no writes to ~/.quayside, no run left active."""
    import os

    for key in list(os.environ):
        if key.startswith("QUAYSIDE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_HOME", str(tmp_path / "home"))
    yield
    while fluent.active_run() is not None:
        fluent.end_run("KILLED")


@pytest.fixture(scope="session")
def local_sqlite(sqlite_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Target:
    home = tmp_path_factory.mktemp("local-sqlite")
    return Target("local-sqlite", Settings(home=home, db_url=sqlite_database_url), home / "artifacts")


@pytest.fixture(scope="session")
def local_postgresql(postgres_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Target:
    home = tmp_path_factory.mktemp("local-postgresql")
    return Target("local-postgresql", Settings(home=home, db_url=postgres_database_url), home / "artifacts")


def _rest(name: str, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    home = tmp_path_factory.mktemp(name)
    return Target(name, Settings(home=home, tracking_uri=server.url), server.home / "artifacts")


@pytest.fixture(scope="session")
def rest_sqlite(sqlite_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    return _rest("rest-sqlite", sqlite_server, tmp_path_factory)


@pytest.fixture(scope="session")
def rest_postgresql(postgresql_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    return _rest("rest-postgresql", postgresql_server, tmp_path_factory)


@pytest.fixture(params=["local_sqlite", "local_postgresql", "rest_sqlite", "rest_postgresql"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each tracking target in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def client(target: Target) -> Client:
    return target.client()


@pytest.fixture
def use_target(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    """Point the fluent API (which reads QUAYSIDE_* like a user's script) at the target."""
    for key, value in target.env().items():
        monkeypatch.setenv(key, value)
    return target
