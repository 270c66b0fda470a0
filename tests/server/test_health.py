"""Readiness fails, naming which, while the database or the artifact store is unreachable; liveness stays up."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quayside.artifacts import S3ArtifactStore
from quayside.config import Settings
from quayside.server import health
from quayside.server.app import create_app
from tests.adversarial.test_disclosure import CuttableProxy
from tests.artifacts.conftest import ACCESS_KEY, REGION, SECRET_KEY, aws_environment, moto_server
from tests.db import fixtures


def client_of(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), base_url="http://localhost")


def test_a_server_whose_database_and_store_answer_is_ready(tmp_path: Path):
    with client_of(Settings(home=tmp_path)) as http:
        ready = http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        alive = http.get("/health").json()
        assert alive["status"] == "ok" and isinstance(alive["pid"], int)


@pytest.fixture
def postgres_behind_a_proxy() -> Iterator[tuple[str, CuttableProxy]]:
    database = fixtures.create_postgres_database()
    proxy = CuttableProxy()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}", proxy
    finally:
        proxy.cut()
        fixtures.drop_postgres_database(database)


def test_while_the_database_is_unreachable_readiness_is_503_naming_it_and_liveness_is_200(
    tmp_path: Path, postgres_behind_a_proxy
):
    url, proxy = postgres_behind_a_proxy
    with client_of(Settings(home=tmp_path, db_url=url, db_connection_timeout_s=2)) as http:
        assert http.get("/health/ready").status_code == 200
        proxy.cut()
        ready = http.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert int(ready.headers["retry-after"]) >= 1
        message = ready.json()["error"]["message"]
        assert message.startswith("not ready: the tracking database")
        assert "artifact store" not in message  # the store still answers
        assert str(proxy.port) not in message and "postgres" not in message
        assert http.get("/health").status_code == 200


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server for this module's tests."""
    with pytest.MonkeyPatch.context() as env:
        aws_environment(env)
        with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as endpoint:
            yield endpoint


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def s3_settings(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose artifact root is a new bucket on the moto server."""
    aws_environment(monkeypatch)
    monkeypatch.setenv("QUAYSIDE_S3_ENDPOINT_URL", s3_endpoint)
    bucket = f"quayside-{uuid.uuid4().hex[:16]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return Settings(home=tmp_path, artifact_root=f"s3://{bucket}/root")


def test_while_the_bucket_is_gone_readiness_is_503_naming_the_artifact_store(
    s3_settings: Settings, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(health, "ARTIFACT_CHECK_TTL_S", 0.0)  # see each change at once
    with client_of(s3_settings) as http:
        assert http.get("/health/ready").status_code == 200
        s3_client(s3_endpoint).delete_bucket(Bucket=s3_settings.artifact_root.split("/")[2])
        ready = http.get("/health/ready")
        assert ready.status_code == 503, ready.text
        message = ready.json()["error"]["message"]
        assert message.startswith("not ready: the artifact store")
        assert "the bucket does not exist" in message and "database" not in message
        assert http.get("/health").status_code == 200


def test_a_storm_of_probes_checks_the_bucket_once_per_ttl(
    s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    checks = []
    real_check = S3ArtifactStore.check

    def counted(store: S3ArtifactStore) -> None:
        checks.append(time.monotonic())
        real_check(store)

    monkeypatch.setattr(S3ArtifactStore, "check", counted)
    with client_of(s3_settings) as http:
        checks.clear()  # the check at start is not a probe's
        started = time.monotonic()
        for _ in range(50):
            assert http.get("/health/ready").status_code == 200
        elapsed = time.monotonic() - started
    assert 1 <= len(checks) <= 1 + elapsed / health.ARTIFACT_CHECK_TTL_S


def test_while_the_s3_endpoint_is_down_readiness_is_503_and_liveness_200(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    aws_environment(monkeypatch)
    monkeypatch.setattr(health, "ARTIFACT_CHECK_TTL_S", 0.0)
    with contextlib.ExitStack() as endpoint_up:
        endpoint = endpoint_up.enter_context(moto_server(tmp_path / "moto.log"))  # this test's own
        monkeypatch.setenv("QUAYSIDE_S3_ENDPOINT_URL", endpoint)
        s3_client(endpoint).create_bucket(Bucket="readiness")
        with client_of(Settings(home=tmp_path / "home", artifact_root="s3://readiness")) as http:
            assert http.get("/health/ready").status_code == 200
            endpoint_up.close()  # the endpoint stops; the server does not
            started = time.monotonic()
            ready = http.get("/health/ready")
            waited = time.monotonic() - started
            assert ready.status_code == 503, ready.text
            message = ready.json()["error"]["message"]
            assert message.startswith("not ready: the artifact store")
            assert "127.0.0.1" not in message and endpoint not in message
            # Bounded by the server's own timeout, not by boto3's retries (a hang guard, generous).
            assert waited < health.READY_TIMEOUT_S + 5
            assert http.get("/health").status_code == 200
