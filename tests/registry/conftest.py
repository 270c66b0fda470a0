"""The registry suite runs client tests five ways: local store or REST server, on SQLite or PostgreSQL, with
local artifacts; and the local store on PostgreSQL with its artifacts in S3 (moto's server, over HTTP).

The S3 variant is the one a team runs (PostgreSQL + a bucket); it is added for the local store only,
which exercises every store path the server uses, so that the suite grows by a fifth, not a half. The
server on S3 is exercised by the round trips of tests/registry/test_artifact_stores.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import quayside.registry.tables  # noqa: F401  (registers the registry tables on Base for the migration tests)
from quayside import RegistryClient, save_model
from quayside.config import Settings
from quayside.tracking import fluent
from quayside.tracking.client import Client
from tests.artifacts.conftest import aws_environment, moto_server
from tests.db import fixtures
from tests.db.fixtures import Server

# Shared fixtures (one PostgreSQL database and one server per database for the whole session).
database_url = fixtures.database_url
postgres_database_url = fixtures.postgres_database_url
postgresql_server = fixtures.postgresql_server
sqlite_database_url = fixtures.sqlite_database_url
sqlite_server = fixtures.sqlite_server


def unique(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Target:
    """Where a test's registry (and tracking) lives: the settings a user would have."""

    name: str
    settings: Settings

    def registry(self, actor: str | None = None) -> RegistryClient:
        settings = self.settings if actor is None else self.settings.model_copy(update={"actor": actor})
        return RegistryClient(settings=settings)

    def tracking(self) -> Client:
        return Client(settings=self.settings)

    endpoint: str | None = None
    """The S3 endpoint of an ``s3://`` artifact root."""

    def env(self) -> dict[str, str]:
        env = {"QUAYSIDE_HOME": str(self.settings.home)}
        if self.settings.tracking_uri:
            env["QUAYSIDE_TRACKING_URI"] = self.settings.tracking_uri
        if self.settings.db_url:
            env["QUAYSIDE_DB_URL"] = self.settings.db_url
        if self.settings.artifact_root:
            env["QUAYSIDE_ARTIFACT_ROOT"] = self.settings.artifact_root
        if self.endpoint:
            env["QUAYSIDE_S3_ENDPOINT_URL"] = self.endpoint
        return env


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No QUAYSIDE_* from the developer's shell and no writes to ~/.quayside."""
    for key in list(os.environ):
        if key.startswith("QUAYSIDE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_HOME", str(tmp_path / "home"))
    yield
    while fluent.active_run() is not None:
        fluent.end_run("KILLED")


@pytest.fixture(scope="session")
def local_sqlite(sqlite_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Target:
    home = tmp_path_factory.mktemp("registry-local-sqlite")
    return Target("local-sqlite", Settings(home=home, db_url=sqlite_database_url))


@pytest.fixture(scope="session")
def local_postgresql(postgres_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Target:
    home = tmp_path_factory.mktemp("registry-local-postgresql")
    return Target("local-postgresql", Settings(home=home, db_url=postgres_database_url))


def _rest(name: str, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    return Target(name, Settings(home=tmp_path_factory.mktemp(name), tracking_uri=server.url))


@pytest.fixture(scope="session")
def rest_sqlite(sqlite_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    return _rest("registry-rest-sqlite", sqlite_server, tmp_path_factory)


@pytest.fixture(scope="session")
def rest_postgresql(postgresql_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Target:
    return _rest("registry-rest-postgresql", postgresql_server, tmp_path_factory)


@dataclass(frozen=True)
class S3:
    """The registry suite's S3 endpoint and a bucket of its own."""

    endpoint: str
    bucket: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def root(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture(scope="session")
def registry_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's S3 server for the registry suite (a process of its own, reached over HTTP), with a bucket."""
    with pytest.MonkeyPatch.context() as env:
        aws_environment(env)
        with moto_server(tmp_path_factory.mktemp("registry-moto") / "server.log") as endpoint:
            s3 = S3(endpoint, f"quayside-registry-{uuid.uuid4().hex[:12]}")
            s3.client().create_bucket(Bucket=s3.bucket)
            yield s3


@pytest.fixture
def s3_settings(registry_s3: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The AWS variables a user of the S3 root has, for one test: credentials and the endpoint."""
    aws_environment(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", registry_s3.endpoint)
    return registry_s3


@pytest.fixture(scope="session")
def local_s3_postgresql(
    postgres_database_url: str, registry_s3: S3, tmp_path_factory: pytest.TempPathFactory
) -> Target:
    home = tmp_path_factory.mktemp("registry-local-s3-postgresql")
    settings = Settings(home=home, db_url=postgres_database_url, artifact_root=registry_s3.root("team"))
    return Target("local-s3-postgresql", settings, endpoint=registry_s3.endpoint)


TARGETS = ["local_sqlite", "local_postgresql", "rest_sqlite", "rest_postgresql", "local_s3_postgresql"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Target:
    """Each registry target in turn."""
    if request.param.endswith("_s3_postgresql"):
        request.getfixturevalue("s3_settings")
    return request.getfixturevalue(request.param)


@pytest.fixture
def registry(target: Target) -> RegistryClient:
    return target.registry(actor="tester")


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> list[Path]:
    """Three small packages of the same model that differ in their metadata (so in their digests)."""
    root = tmp_path_factory.mktemp("packages")
    made = []
    for number in range(3):
        path = root / f"iris-{number}"
        save_model(iris_classifier, path, input_example=iris[0].head(10), metadata={"number": number})
        made.append(path)
    return made
