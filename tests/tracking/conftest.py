"""The tracking suite runs every client test four ways: local store or REST server, on SQLite or PostgreSQL
with a local artifact directory; the modules that store artifacts (:data:`S3_MODULES`) run two ways more,
local store and REST server on PostgreSQL with the artifacts in S3 (moto's server, reached over HTTP).

Only those modules get the S3 ways: the others store no artifact, and running them again against
a bucket would double the suite's time and test nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


S3_MODULES = {"test_client", "test_fluent"}
"""The modules whose tests also run with the artifacts in S3."""
LOCAL_TARGETS = ["local_sqlite", "local_postgresql", "rest_sqlite", "rest_postgresql"]
S3_TARGETS = ["local_s3_postgresql", "rest_s3_postgresql"]


@dataclass(frozen=True)
class Target:
    """Where a test's tracking goes: the settings a user would have, and what its artifact root holds."""

    name: str
    settings: Settings
    artifact_root: Path
    """The local artifact directory (of the server, for a REST target); unused with an S3 root."""
    environment: dict[str, str] = field(default_factory=dict)
    """Further variables the target needs in a process's environment (the S3 endpoint)."""
    listing: Callable[[], set[str]] | None = None
    """Every object of an S3 root; None: the files under ``artifact_root``'s parent are listed."""

    def client(self) -> Client:
        return Client(settings=self.settings)

    def env(self) -> dict[str, str]:
        """The QUAYSIDE_* variables that point a process (or the fluent API) here."""
        env = {"QUAYSIDE_HOME": str(self.settings.home)} | self.environment
        if self.settings.tracking_uri:
            env["QUAYSIDE_TRACKING_URI"] = self.settings.tracking_uri
        if self.settings.db_url:
            env["QUAYSIDE_DB_URL"] = self.settings.db_url
        if self.settings.artifact_root:
            env["QUAYSIDE_ARTIFACT_ROOT"] = self.settings.artifact_root
        return env

    def stored(self) -> set[str]:
        """What the artifact root holds now: file paths, or object keys."""
        if self.listing is not None:
            return self.listing()
        base = self.artifact_root.parent
        return {p.as_posix() for p in base.rglob("*") if p.is_file()} if base.exists() else set()


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


def _bucket_listing(client: Any, bucket: str, prefix: str) -> Callable[[], set[str]]:
    def listing() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        return {entry["Key"] for page in pages for entry in page.get("Contents", [])}

    return listing


@pytest.fixture(scope="session")
def local_s3_postgresql(
    postgres_database_url: str,
    s3_session_endpoint: str,
    s3_session_bucket: str,
    s3_session_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Target:
    home = tmp_path_factory.mktemp("local-s3-postgresql")
    root = f"s3://{s3_session_bucket}/local-tracking"
    settings = Settings(home=home, db_url=postgres_database_url, artifact_root=root)
    listing = _bucket_listing(s3_session_client, s3_session_bucket, "local-tracking")
    environment = {"QUAYSIDE_S3_ENDPOINT_URL": s3_session_endpoint}
    return Target("local-s3-postgresql", settings, home / "artifacts", environment, listing)


@pytest.fixture(scope="session")
def rest_s3_postgresql(
    postgres_database_url: str,
    s3_session_endpoint: str,
    s3_session_bucket: str,
    s3_session_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    root = f"s3://{s3_session_bucket}/server-tracking"
    server = Server(
        tmp_path_factory.mktemp("server-s3-postgresql"),
        postgres_database_url,
        settings={"QUAYSIDE_ARTIFACT_ROOT": root, "QUAYSIDE_S3_ENDPOINT_URL": s3_session_endpoint},
    )
    with pytest.MonkeyPatch.context() as patch:
        # It imports boto3 and makes its S3 clients as it starts: slow on a loaded machine.
        patch.setattr(fixtures, "SERVER_START_TIMEOUT_S", 120)
        server.start()
    try:
        home = tmp_path_factory.mktemp("rest-s3-postgresql")
        listing = _bucket_listing(s3_session_client, s3_session_bucket, "server-tracking")
        settings = Settings(home=home, tracking_uri=server.url)
        yield Target("rest-s3-postgresql", settings, server.home / "artifacts", listing=listing)
    finally:
        server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        module = metafunc.module.__name__.rpartition(".")[2]
        names = LOCAL_TARGETS + (S3_TARGETS if module in S3_MODULES else [])
        metafunc.parametrize("target", names, indirect=True)


@pytest.fixture
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Target:
    """Each tracking target in turn (see :func:`pytest_generate_tests` for which)."""
    chosen: Target = request.getfixturevalue(request.param)
    for key, value in chosen.environment.items():
        monkeypatch.setenv(key, value)
    return chosen


@pytest.fixture
def client(target: Target) -> Client:
    return target.client()


@pytest.fixture
def use_target(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    """Point the fluent API (which reads QUAYSIDE_* like a user's script) at the target."""
    for key, value in target.env().items():
        monkeypatch.setenv(key, value)
    return target
