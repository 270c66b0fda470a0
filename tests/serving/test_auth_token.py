"""``quayside serve --auth-token-file``: inference and metadata need the bearer token; probes do not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from quayside.errors import UsageError
from quayside.serving.auth import BearerToken, read_token_file
from tests.serving.conftest import error_of, free_port, start_server

TOKEN = "s3cret-token-for-the-model-server"
V2_BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 10], "data": [0.01] * 10}]}
GUARDED = [
    ("POST", "/v2/models/diabetes/infer", V2_BODY),  # the fast path
    ("POST", "/invocations", {"inputs": [[0.01] * 10]}),  # the fast path
    ("GET", "/v2/models/diabetes", None),  # model metadata: the signature
    ("GET", "/v2", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("GET", "/no/such/route", None),  # fail-closed: not even a 404 without the token
]
OPEN = ["/v2/health/live", "/v2/health/ready", "/v2/models/diabetes/ready", "/ping", "/metrics"]


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(TOKEN + "\n")  # as `echo` writes it: the newline is not part of the token
    return path


@pytest.fixture(scope="module")
def guarded_server(tensor_package, token_file, tmp_path_factory):
    server = start_server(
        tensor_package, "--auth-token-file", str(token_file), log_dir=tmp_path_factory.mktemp("log")
    )
    yield server
    server.stop()


def call(url: str, method: str, path: str, body, **headers: str) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=10)


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
def test_without_the_token_a_guarded_route_answers_401_with_a_bearer_challenge(
    guarded_server, method, path, body
):
    response = call(guarded_server.url, method, path, body)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    code, message = error_of(path, response)
    assert code == "unauthenticated"
    assert "Authorization: Bearer" in message


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}", TOKEN, f"Bearer{TOKEN}"],
)
def test_a_wrong_token_or_scheme_is_refused(guarded_server, authorization):
    response = call(guarded_server.url, *GUARDED[0][:2], V2_BODY, Authorization=authorization)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(("method", "path", "body"), GUARDED[:6], ids=[p for _, p, _ in GUARDED[:6]])
def test_with_the_token_a_guarded_route_answers(guarded_server, method, path, body):
    response = call(guarded_server.url, method, path, body, Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.text


def test_the_scheme_is_case_insensitive(guarded_server):
    response = call(guarded_server.url, *GUARDED[0][:2], V2_BODY, Authorization=f"bearer {TOKEN}")
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [1]


@pytest.mark.parametrize("path", OPEN)
def test_health_readiness_and_metrics_stay_open_for_probes(guarded_server, path):
    assert httpx.get(f"{guarded_server.url}{path}", timeout=10).status_code == 200


def test_the_host_check_comes_before_the_token(guarded_server):
    response = call(
        guarded_server.url, *GUARDED[0][:2], V2_BODY, Authorization=f"Bearer {TOKEN}", Host="evil.example"
    )
    assert response.status_code == 400 and error_of(GUARDED[0][1], response)[0] == "invalid_host"


def test_the_start_line_says_a_token_is_needed_and_the_log_never_shows_it(guarded_server):
    call(guarded_server.url, *GUARDED[0][:2], V2_BODY, Authorization=f"Bearer {TOKEN}")
    log = guarded_server.log()
    assert "bearer token needed" in log
    assert TOKEN not in log


def test_the_image_entry_point_reads_the_token_file_from_the_environment(tensor_package, token_file):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAYSIDE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "quayside.serving", str(tensor_package)],
        env=env | {"PORT": str(port), "QUAYSIDE_AUTH_TOKEN_FILE": str(token_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert call(url, *GUARDED[0][:2], V2_BODY).status_code == 401
        assert call(url, *GUARDED[0][:2], V2_BODY, Authorization=f"Bearer {TOKEN}").status_code == 200
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no file"),
        ("", "is empty"),
        ("  \n", "is empty"),
        ("short", "at least 16"),
        ("has a space in it!!", "without spaces"),
    ],
    ids=["missing", "empty", "blank", "short", "space"],
)
@pytest.mark.parametrize("command", ["quayside serve", "python -m quayside.serving"])
def test_a_missing_or_unusable_token_file_refuses_to_start_with_one_line(
    tensor_package, tmp_path, content, message, command
):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    argv = ["-m", "quayside", "serve"] if command == "quayside serve" else ["-m", "quayside.serving"]
    result = subprocess.run(
        [
            sys.executable,
            *argv,
            str(tensor_package),
            "--port",
            str(free_port()),
            "--auth-token-file",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --auth-token-file") and message in lines[0], (
        result.stderr
    )


def test_the_check_compares_the_whole_token():
    check = BearerToken(TOKEN.encode(), "m")
    assert check.accepts(f"Bearer {TOKEN}".encode()) and check.accepts(f"BEARER {TOKEN}".encode())
    assert not check.accepts(None) and not check.accepts(b"Bearer") and not check.accepts(TOKEN.encode())
    assert "/v2/models/m/ready" in check.open_paths and "/v2/models/m" not in check.open_paths


def test_read_token_file_strips_the_newline(tmp_path):
    (tmp_path / "t").write_text(f"  {TOKEN}\n")
    assert read_token_file(tmp_path / "t") == TOKEN.encode()
    with pytest.raises(UsageError):
        read_token_file(tmp_path / "missing")
