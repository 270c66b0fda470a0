"""Contention is a 503 with Retry-After, never a 500; liveness answers from the event loop meanwhile.

A real ``quayside server`` on SQLite, while this process holds the database under
``BEGIN EXCLUSIVE``: 50 concurrent writes through every write path (REST tracking,
the MLflow adapter, the registry) each answer 503 with ``Retry-After`` (or succeed once
the lock is gone), none 500, and ``GET /health`` answers 200 while they wait.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from quayside.db.engine import Sessions
from quayside.errors import UnavailableError
from tests.db import fixtures

postgres_database_url = fixtures.postgres_database_url

WRITES = 50
# Only a guard against a hang: nothing here asserts how long an answer took.
CLIENT_TIMEOUT_S = 60


@dataclass
class Target:
    server: fixtures.Server
    database: Path
    run_id: str


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    home = tmp_path_factory.mktemp("contention")
    database = home / "quayside.db"
    # Short database timeouts, so that the test's waits are short.
    server = fixtures.Server(
        home,
        f"sqlite:///{database}",
        settings={"QUAYSIDE_DB_LOCK_TIMEOUT_S": "2", "QUAYSIDE_DB_CONNECTION_TIMEOUT_S": "1"},
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as http:
            experiment = http.post("/api/tracking/experiments", json={"name": "contention"}).json()
            run = http.post("/api/tracking/runs", json={"experiment_id": experiment["id"]}).json()
            http.get("/api/registry/models").raise_for_status()  # the registry store opens on first use
        yield Target(server, database, run["id"])
    finally:
        server.stop()


class ExclusiveLock:
    """Another process's view: a connection of this test process holding ``BEGIN EXCLUSIVE``."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)

    def __enter__(self) -> ExclusiveLock:
        self.connection.execute("BEGIN EXCLUSIVE")
        return self

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def __exit__(self, *_exc: object) -> None:
        self.release()
        self.connection.close()


def write_requests(run_id: str, tag: str, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``count`` writes through the REST tracking, MLflow and registry write routes; names start with ``tag``."""
    kinds = [
        lambda i: ("POST", f"/api/tracking/runs/{run_id}/batch", {"json": {"params": {f"{tag}-p{i}": "v"}}}),
        lambda i: ("POST", "/api/tracking/experiments", {"json": {"name": f"{tag}-e{i}"}}),
        lambda i: (
            "POST",
            "/api/2.0/mlflow/runs/log-metric",
            {"json": {"run_id": run_id, "key": "m", "value": i, "timestamp": 1, "step": i}},
        ),
        lambda i: ("POST", "/api/2.0/mlflow/experiments/create", {"json": {"name": f"{tag}-mlflow-{i}"}}),
        lambda i: ("POST", "/api/registry/models", {"json": {"name": f"{tag}-model-{i}"}}),
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


async def _send(client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
    return await client.request(method, url, **kwargs)


def assert_retryable(response: httpx.Response, database: Path) -> None:
    assert response.status_code == 503, (response.request.url, response.status_code, response.text)
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    if response.request.url.path.startswith("/api/2.0/mlflow"):
        assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
        message = body["message"]
    else:
        assert body["error"]["code"] == "unavailable"
        message = body["error"]["message"]
    assert "retry" in message
    for private in (str(database), "sqlite", "quayside.db", str(database.parent)):
        assert private not in response.text


async def writes_under_lock(
    target: Target, tag: str, release_midway: bool
) -> tuple[list[httpx.Response], dict[str, int]]:
    limits = httpx.Limits(max_connections=WRITES + 10)
    async with httpx.AsyncClient(
        base_url=target.server.url, timeout=CLIENT_TIMEOUT_S, limits=limits
    ) as client:
        with ExclusiveLock(target.database) as lock:
            writes = [
                asyncio.ensure_future(_send(client, m, u, kw))
                for m, u, kw in write_requests(target.run_id, tag, WRITES)
            ]
            # Let the writes reach the server and fill its threads and its pool.
            await asyncio.sleep(0.5)
            probes = {
                "health": (await client.get("/health")).status_code,
                "writes_pending_at_health": sum(not w.done() for w in writes),
            }
            if release_midway:
                lock.release()
            ready = await client.get("/health/ready")
            probes["ready"] = ready.status_code
            if ready.status_code == 503:
                assert "retry-after" in ready.headers
            responses = await asyncio.gather(*writes)
    return list(responses), probes


def test_writes_against_a_locked_database_answer_503_with_retry_after_and_health_stays_live(target: Target):
    responses, probes = asyncio.run(writes_under_lock(target, "held", release_midway=False))

    assert probes["health"] == 200
    assert probes["writes_pending_at_health"] > 0  # /health answered while writes waited on the lock
    assert probes["ready"] in (200, 503)
    assert len(responses) == WRITES
    for response in responses:
        assert_retryable(response, target.database)
    # Nothing was written while the lock was held; and once it is gone, writes go through.
    with httpx.Client(base_url=target.server.url, timeout=CLIENT_TIMEOUT_S) as http:
        experiments = http.get("/api/tracking/experiments").json()["experiments"]
        assert not [e["name"] for e in experiments if e["name"].startswith("held-")]
        models = http.get("/api/registry/models").json()["models"]
        assert not [m["name"] for m in models if m["name"].startswith("held-")]
        params = http.get(f"/api/tracking/runs/{target.run_id}").json()["params"]
        assert not [key for key in params if key.startswith("held-")]
        assert http.post("/api/tracking/experiments", json={"name": "after-the-lock"}).status_code == 201
        assert http.get("/health/ready").status_code == 200


def test_writes_when_the_lock_is_released_midway_succeed_or_answer_503_never_500(target: Target):
    responses, probes = asyncio.run(writes_under_lock(target, "released", release_midway=True))

    assert probes["health"] == 200
    for response in responses:
        if response.status_code >= 300:
            assert_retryable(response, target.database)
    with httpx.Client(base_url=target.server.url, timeout=CLIENT_TIMEOUT_S) as http:
        assert http.post(
            f"/api/tracking/runs/{target.run_id}/batch", json={"params": {"after": "1"}}
        ).is_success


def test_a_serialization_failure_on_postgresql_is_unavailable_and_says_to_retry(postgres_database_url: str):
    sessions = Sessions(postgres_database_url, "tracking")
    insert = text("INSERT INTO experiments (name, lifecycle, created_at) VALUES (:name, 'active', 0)")
    count = text("SELECT count(*) FROM experiments")
    serializable = {"isolation_level": "SERIALIZABLE"}
    with sessions.engine.connect() as first, sessions.engine.connect() as second:
        first, second = first.execution_options(**serializable), second.execution_options(**serializable)
        # Write skew: each reads what the other then writes, so one of them cannot be serialized.
        first.execute(count)
        second.execute(count)
        first.execute(insert, {"name": f"serial-{uuid.uuid4().hex}"})
        with pytest.raises(UnavailableError) as caught, sessions.translated():
            second.execute(insert, {"name": f"serial-{uuid.uuid4().hex}"})
            first.commit()
            second.commit()
    assert caught.value.message == (
        "the write lost a race with a concurrent one on the tracking database (serialization failure); retry it"
    )
    assert "postgresql" not in caught.value.message
    assert caught.value.detail is not None and "postgresql+psycopg://" in caught.value.detail
