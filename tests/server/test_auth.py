"""How ``quayside server`` knows who is asking: its start-up modes and the credentials each request carries.

The modes run the real ``quayside server`` command in a subprocess; the credentials go
through FastAPI's TestClient over ``create_app`` with auth on, with real users and tokens
from the app's own :class:`IdentityStore`.
"""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from quayside.config import Settings
from quayside.server.app import create_app
from quayside.server.deps import AppState, app_state
from tests.db.fixtures import QUAYSIDE, Server, clean_env, free_port

BASE_URL = "http://localhost"
PASSWORD = "a long enough password"
EXPERIMENTS = "/api/tracking/experiments"
MLFLOW_SEARCH = "/api/2.0/mlflow/experiments/search"


def _server_command(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QUAYSIDE, "server", "--port", str(free_port()), *args],
        env=clean_env(QUAYSIDE_HOME=str(home), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- modes --------------------------------------------------------------------------------------


def test_a_non_loopback_bind_without_auth_refuses_to_start_with_one_line(tmp_path: Path):
    result = _server_command(tmp_path, "--host", "0.0.0.0")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refusing to listen on 0.0.0.0 without authentication" in lines[0]
    assert "--auth" in lines[0] and "--insecure-no-auth" in lines[0]
    assert not (tmp_path / "quayside.db").exists(), "a server that must not start touched the database"


def test_auth_with_no_users_refuses_to_start_and_says_how_to_make_the_first_admin(tmp_path: Path):
    for args, env in ((("--auth",), {}), ((), {"QUAYSIDE_AUTH": "true"})):
        result = _server_command(tmp_path, *args, **env)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "quayside admin create-user NAME --admin" in lines[0]


def _started_notice(home: Path, host: str, *args: str) -> str:
    server = Server(home, f"sqlite:///{home / 'quayside.db'}")
    process = subprocess.Popen(
        [QUAYSIDE, "server", "--port", str(server.port), "--host", host, *args],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server.process = process  # type: ignore[assignment]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)  # polling for the port to open
    finally:
        server.stop()
    return process.stderr.read()  # type: ignore[union-attr]


def test_single_user_mode_on_loopback_says_so_on_start(tmp_path: Path):
    stderr = _started_notice(tmp_path, "127.0.0.1")
    assert "single-user mode without authentication" in stderr


def test_insecure_no_auth_warns_on_every_start(tmp_path: Path):
    for _ in range(2):
        stderr = _started_notice(tmp_path, "0.0.0.0", "--insecure-no-auth")
        assert "WARNING" in stderr and "WITHOUT authentication" in stderr


# --- credentials --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    made = create_app(Settings(home=tmp_path_factory.mktemp("auth"), auth=True))
    store = app_state(made).identity
    store.create_user("alice", password=PASSWORD)
    store.create_user("bob", password=PASSWORD)
    store.create_user("robot", service=True)
    return made


@pytest.fixture(scope="module")
def state(app) -> AppState:
    return app_state(app)


@pytest.fixture(scope="module")
def http(app) -> TestClient:
    return TestClient(app, base_url=BASE_URL)


def _basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_signs_in_and_a_wrong_one_is_401_in_each_apis_shape(state: AppState, http: TestClient):
    token = state.identity.create_token("alice", actor="test").token
    assert http.get(EXPERIMENTS, headers=_bearer(token)).status_code == 200
    for headers in (
        {},
        _bearer(token + "x"),
        _bearer("qs_000000000000_nope"),
        {"Authorization": "Token abc"},
    ):
        answer = http.get(EXPERIMENTS, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["error"]["code"] == "unauthenticated"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="quayside"'
        mlflow = http.post(MLFLOW_SEARCH, json={"max_results": 10}, headers=headers)
        assert mlflow.status_code == 401
        assert mlflow.json()["error_code"] == "UNAUTHENTICATED"


def test_a_revoked_token_is_401(state: AppState, http: TestClient):
    new = state.identity.create_token("alice", actor="test")
    assert http.get(EXPERIMENTS, headers=_bearer(new.token)).status_code == 200
    state.identity.revoke_token(new.info.id, actor="test")
    assert http.get(EXPERIMENTS, headers=_bearer(new.token)).status_code == 401


def test_basic_takes_a_password_or_the_users_own_token(state: AppState, http: TestClient):
    """MLflow's MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, with a password or a token."""
    assert http.get(EXPERIMENTS, headers=_basic("alice", PASSWORD)).status_code == 200
    token = state.identity.create_token("robot", actor="test").token
    assert http.post(MLFLOW_SEARCH, json={}, headers=_basic("robot", token)).status_code == 200
    for headers in (
        _basic("alice", "wrong password!"),
        _basic("bob", token),  # robot's token under bob's name
        {"Authorization": "Basic not-base64!"},
        _basic("", PASSWORD),
    ):
        answer = http.get(EXPERIMENTS, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="quayside"'


def test_the_identity_is_resolved_once_per_request(state: AppState, http: TestClient, monkeypatch):
    token = state.identity.create_token("alice", actor="test").token
    calls = []
    authenticate = state.identity.authenticate_token

    def counted(given: str):
        calls.append(given)
        return authenticate(given)

    monkeypatch.setattr(state.identity, "authenticate_token", counted)
    # The rule check, the readable-experiments filter and the route's own caller all ask for it.
    answer = http.post("/api/tracking/runs/search", json={}, headers=_bearer(token))
    assert answer.status_code == 200, answer.text
    assert len(calls) == 1


def test_public_routes_read_no_credentials(http: TestClient):
    for path in ("/health", "/health/ready", "/openapi.json", "/docs"):
        assert http.get(path, headers=_bearer("qs_bad_bad")).status_code == 200, path
