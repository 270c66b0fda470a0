"""A real ``quayside server`` of a test module's own, and an HTTP client of it.

A module that needs settings of its own for its server overrides ``server_settings``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.db.fixtures import Server

CLIENT_TIMEOUT_S = 60  # a hang guard only


@pytest.fixture(scope="module")
def server_settings() -> dict[str, str]:
    """``QUAYSIDE_*`` variables for the module's :func:`server`, over the test server's own."""
    return {}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, server_settings: dict[str, str]
) -> Iterator[Server]:
    """A server on a SQLite file of its own, shared by the module's tests."""
    home = tmp_path_factory.mktemp(f"{request.module.__name__.rpartition('.')[2]}-server")
    started = Server(home, f"sqlite:///{home / 'quayside.db'}", settings=server_settings).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as client:
        yield client
