"""The real ``mlflow`` client (its own venv, tests/venvs.py) against ``quayside server --auth``.

MLflow's own credential variables: ``MLFLOW_TRACKING_TOKEN`` (Bearer) and
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (Basic, with a password or a
token). No credentials is 401; a read-only user's ``log_metric`` is 403; what a refused
call would have written is not in the store (re-read through Quayside's client).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quayside.config import Settings
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.tracking.client import Client
from tests.server.auth_fixtures import PASSWORD, AuthServer, start_auth_server

SCRIPT = Path(__file__).parent / "data" / "mlflow_auth.py"
MLFLOW = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    server = start_auth_server(tmp_path_factory.mktemp("mlflow-auth"), default_permission="none")
    server.add_user("alice")  # logs runs; gets manage on the experiment she creates
    server.add_user("bob")  # read-only on alice's experiment
    server.add_user("trainer", service=True)  # a service account: tokens only
    try:
        yield server
    finally:
        server.stop()


def _mlflow(mlflow_venv, auth: AuthServer, tmp_path: Path, *args: str, **credentials: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "QUAYSIDE_"))}
    env |= {"MLFLOW_TRACKING_URI": auth.url, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    env |= {f"MLFLOW_TRACKING_{key.upper()}": value for key, value in credentials.items()}
    result = mlflow_venv.run(str(SCRIPT), *args, cwd=tmp_path, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def logged(auth: AuthServer, mlflow_venv, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run alice logged with MLFLOW_TRACKING_TOKEN; bob may read its experiment."""
    experiment = f"mlflow-auth-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("mlflow-run")
    result = _mlflow(mlflow_venv, auth, tmp, "write", experiment, token=auth.tokens["alice"])
    assert result["ok"], result
    auth.grant("bob", Resource(ResourceKind.EXPERIMENT, result["value"]["experiment_id"]), Level.READ)
    return result["value"] | {"experiment": experiment}


def _run(auth: AuthServer, tmp_path: Path, run_id: str):
    settings = Settings(home=tmp_path / "reader", tracking_uri=auth.url, token=auth.tokens["admin"])
    return Client(settings=settings).get_run(run_id)


def test_mlflow_logs_with_mlflow_tracking_token(logged: dict, auth: AuthServer, tmp_path: Path):
    run = _run(auth, tmp_path, logged["run_id"])
    assert run.params == {"C": "0.5"}
    assert run.metrics["loss"].value == 0.25
    # bob's search lists the experiment he was granted read on, and nothing he was not.
    found = httpx.post(
        f"{auth.url}{MLFLOW}/experiments/search", json={"max_results": 100}, headers=auth.headers("bob")
    )
    assert found.status_code == 200, found.text
    assert {e["name"] for e in found.json()["experiments"]} == {logged["experiment"]}


def test_mlflow_without_credentials_gets_401(auth: AuthServer, mlflow_venv, tmp_path: Path):
    result = _mlflow(mlflow_venv, auth, tmp_path, "search")
    assert not result["ok"]
    assert result["status"] == 401, result
    assert result["error_code"] == "UNAUTHENTICATED"
    raw = httpx.post(f"{auth.url}{MLFLOW}/experiments/search", json={"max_results": 10})
    assert raw.status_code == 401
    assert raw.json()["error_code"] == "UNAUTHENTICATED"


def test_mlflow_with_a_bad_token_gets_401(auth: AuthServer, mlflow_venv, tmp_path: Path):
    result = _mlflow(mlflow_venv, auth, tmp_path, "search", token="qs_deadbeef0000_notavalidsecret")
    assert not result["ok"] and result["status"] == 401, result


def test_a_read_only_token_reads_but_log_metric_gets_403_and_nothing_is_logged(
    logged: dict, auth: AuthServer, mlflow_venv, tmp_path: Path
):
    result = _mlflow(mlflow_venv, auth, tmp_path, "read-write", logged["run_id"], token=auth.tokens["bob"])
    assert result["read"] == {"ok": True, "value": {"loss": 0.25}}
    refused = result["log_metric"]
    assert not refused["ok"]
    assert refused["status"] == 403, refused
    assert refused["error_code"] == "PERMISSION_DENIED"
    assert "accuracy" not in _run(auth, tmp_path, logged["run_id"]).metrics


def test_a_user_without_a_grant_cannot_even_read_the_run(
    logged: dict, auth: AuthServer, mlflow_venv, tmp_path
):
    result = _mlflow(
        mlflow_venv, auth, tmp_path, "read-write", logged["run_id"], token=auth.tokens["trainer"]
    )
    assert not result["read"]["ok"] and result["read"]["status"] in (403, 404), result
    assert not result["log_metric"]["ok"]
    assert "accuracy" not in _run(auth, tmp_path, logged["run_id"]).metrics


def test_mlflow_with_basic_username_and_password_works(logged: dict, auth: AuthServer, mlflow_venv, tmp_path):
    result = _mlflow(
        mlflow_venv, auth, tmp_path, "read-write", logged["run_id"], username="alice", password=PASSWORD
    )
    assert result["read"]["ok"], result
    assert result["log_metric"] == {"ok": True, "value": None}
    assert _run(auth, tmp_path, logged["run_id"]).metrics["accuracy"].value == 0.9


def test_mlflow_with_basic_and_a_token_as_the_password_works(auth: AuthServer, mlflow_venv, tmp_path: Path):
    """A service account has no password: its token goes in MLFLOW_TRACKING_PASSWORD."""
    experiment = f"mlflow-service-{uuid.uuid4().hex[:8]}"
    result = _mlflow(
        mlflow_venv, auth, tmp_path, "write", experiment, username="trainer", password=auth.tokens["trainer"]
    )
    assert result["ok"], result
    assert _run(auth, tmp_path, result["value"]["run_id"]).metrics["loss"].value == 0.25


def test_mlflow_with_a_wrong_basic_password_gets_401(auth: AuthServer, mlflow_venv, tmp_path: Path):
    result = _mlflow(mlflow_venv, auth, tmp_path, "search", username="bob", password="not bob's password")
    assert not result["ok"] and result["status"] == 401, result
