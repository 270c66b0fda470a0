"""Real things for the tracking, db and server tests: a PostgreSQL database, a SQLite file, a running server.

Each conftest imports these fixtures; the expensive ones are cached per test session,
so the three test folders share one PostgreSQL database and one server per database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
QUAYSIDE = str(Path(sys.executable).parent / "quayside")
SERVER_START_TIMEOUT_S = 30

_cache: dict[str, object] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without QUAYSIDE_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAYSIDE_")}
    return env | overrides


def create_postgres_database() -> str:
    name = f"quayside_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    from quayside.db.engine import dispose_all

    dispose_all()
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@dataclass
class Server:
    """A `quayside server` subprocess on a free port."""

    home: Path
    db_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    settings: dict[str, str] = field(default_factory=dict)
    """Further ``QUAYSIDE_*`` variables for the server, over those :meth:`env` sets."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return (
            clean_env(
                QUAYSIDE_HOME=str(self.home),
                QUAYSIDE_DB_URL=self.db_url,
                QUAYSIDE_MAX_ARTIFACT_BYTES="1000000",
            )
            | self.settings
        )

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [QUAYSIDE, "server", "--port", str(self.port)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"quayside server exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)  # polling for the port to open, not waiting for a result
        raise RuntimeError("quayside server did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def cached(
    key: str, request: pytest.FixtureRequest, make: Callable[[], object], teardown: Callable[[object], None]
):
    """One value per test session under ``key``, torn down by the fixture instance that made it."""
    if key not in _cache:
        _cache[key] = make()

        def finish() -> None:
            teardown(_cache.pop(key))

        request.addfinalizer(finish)
    return _cache[key]


@pytest.fixture(scope="session")
def postgres_database_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database for this test session, dropped at its end."""
    name = cached("postgres", request, create_postgres_database, lambda n: drop_postgres_database(n))  # type: ignore[arg-type]
    return postgres_url(name)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'quayside.db'}"


_DATABASE_URL_FIXTURES = {"sqlite": "sqlite_database_url", "postgresql": "postgres_database_url"}


@pytest.fixture(scope="session", params=list(_DATABASE_URL_FIXTURES))
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs on SQLite and on PostgreSQL (the conftest must import both fixtures)."""
    return request.getfixturevalue(_DATABASE_URL_FIXTURES[request.param])


@pytest.fixture(scope="session")
def sqlite_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Server:
    def make() -> Server:
        home = tmp_path_factory.mktemp("server-sqlite")
        return Server(home, f"sqlite:///{home / 'quayside.db'}").start()

    return cached("server-sqlite", request, make, lambda s: s.stop())  # type: ignore[return-value,union-attr]


@pytest.fixture(scope="session")
def postgresql_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_database_url: str
) -> Server:
    def make() -> Server:
        return Server(tmp_path_factory.mktemp("server-postgresql"), postgres_database_url).start()

    return cached("server-postgresql", request, make, lambda s: s.stop())  # type: ignore[return-value,union-attr]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, on a SQLite file in the test's directory (to kill and restart)."""
    server = Server(tmp_path, f"sqlite:///{tmp_path / 'quayside.db'}")
    yield server
    server.stop()
