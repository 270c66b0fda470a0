"""Quayside's own clients against ``quayside server --auth``: ``QUAYSIDE_TOKEN``, and ``quayside login``'s saved token.

The token file is created private (0600) and the token never appears in any output.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from quayside import credentials
from quayside.config import Settings
from quayside.errors import AuthenticationError, UsageError
from quayside.registry.client import RegistryClient
from quayside.tracking.client import Client
from tests.db.fixtures import QUAYSIDE, clean_env
from tests.server.auth_fixtures import AuthServer, start_auth_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- the credentials file ----------------------------------------------------------------------


def test_tokens_are_saved_per_server_in_a_file_only_the_user_can_read(tmp_path: Path):
    previous = os.umask(0)  # the most permissive umask: the mode must not depend on it
    try:
        path = credentials.save_token(tmp_path, "http://127.0.0.1:5000/", "qs_one")
    finally:
        os.umask(previous)
    credentials.save_token(tmp_path, "HTTP://Example.COM:8080", "qs_two")
    assert path == tmp_path / "credentials.json"
    assert _mode(path) == 0o600
    assert credentials.saved_token(tmp_path, "http://127.0.0.1:5000") == "qs_one"
    assert credentials.saved_token(tmp_path, "http://example.com:8080/") == "qs_two"
    assert credentials.saved_token(tmp_path, "http://127.0.0.1:5001") is None
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    assert credentials.remove_token(tmp_path, "http://127.0.0.1:5000")
    assert not credentials.remove_token(tmp_path, "http://127.0.0.1:5000")
    assert credentials.saved_token(tmp_path, "http://127.0.0.1:5000") is None
    assert credentials.saved_token(tmp_path, "http://example.com:8080") == "qs_two"
    assert _mode(path) == 0o600


def test_quayside_token_wins_over_a_saved_one_and_is_never_shown(tmp_path: Path):
    credentials.save_token(tmp_path, "http://127.0.0.1:5000", "qs_saved")
    settings = Settings(home=tmp_path)
    assert credentials.token_for(settings, "http://127.0.0.1:5000") == "qs_saved"
    assert credentials.token_for(settings, "http://127.0.0.1:6000") is None
    with_env = Settings(home=tmp_path, token="qs_from_env")
    assert credentials.token_for(with_env, "http://127.0.0.1:5000") == "qs_from_env"
    assert "qs_from_env" not in repr(with_env) and "qs_from_env" not in str(with_env.model_dump())


def test_a_broken_credentials_file_is_named_in_the_error(tmp_path: Path):
    (tmp_path / "credentials.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"credentials\.json is not valid JSON"):
        credentials.saved_token(tmp_path, "http://127.0.0.1:5000")
    with pytest.raises(UsageError, match="not a server URL"):
        credentials.server_key("127.0.0.1:5000")


# --- against a real server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    server = start_auth_server(tmp_path_factory.mktemp("auth-server"), default_permission="read")
    server.add_user("alice")
    try:
        yield server
    finally:
        server.stop()


def _quayside(
    *args: str, home: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QUAYSIDE, *args],
        env=clean_env(QUAYSIDE_HOME=str(home), **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_python_clients_send_quayside_token(auth: AuthServer, tmp_path: Path):
    settings = Settings(home=tmp_path, tracking_uri=auth.url, token=auth.tokens["alice"])
    experiment = Client(settings=settings).create_experiment("alice-by-env")
    assert experiment.name == "alice-by-env"
    assert RegistryClient(settings=settings).list_models() == []

    anonymous = Settings(home=tmp_path / "nobody", tracking_uri=auth.url)
    with pytest.raises(AuthenticationError):
        Client(settings=anonymous).list_experiments()
    wrong = Settings(home=tmp_path / "wrong", tracking_uri=auth.url, token="qs_notatoken_x")
    with pytest.raises(AuthenticationError):
        Client(settings=wrong).list_experiments()


def test_the_cli_sends_quayside_token_and_never_prints_it(auth: AuthServer, tmp_path: Path):
    token = auth.tokens["alice"]
    made = _quayside(
        "experiments",
        "create",
        "alice-cli",
        home=tmp_path,
        QUAYSIDE_TRACKING_URI=auth.url,
        QUAYSIDE_TOKEN=token,
    )
    assert made.returncode == 0, made.stderr
    refused = _quayside("experiments", "list", home=tmp_path, QUAYSIDE_TRACKING_URI=auth.url)
    assert refused.returncode == 1
    assert "error:" in refused.stderr
    assert token not in made.stdout + made.stderr + refused.stdout + refused.stderr


def test_quayside_login_checks_saves_privately_and_logout_forgets(auth: AuthServer, tmp_path: Path):
    token = auth.tokens["alice"]
    bad = _quayside("login", auth.url, "--token-stdin", home=tmp_path, stdin="qs_wrong_token\n")
    assert bad.returncode == 1
    assert "refused the token" in bad.stderr
    assert not (tmp_path / "credentials.json").exists()

    login = _quayside("login", auth.url, "--token-stdin", home=tmp_path, stdin=token + "\n")
    assert login.returncode == 0, login.stderr
    assert f"logged in to {auth.url}" in login.stdout
    saved = tmp_path / "credentials.json"
    assert _mode(saved) == 0o600
    assert credentials.saved_token(tmp_path, auth.url) == token

    listed = _quayside("experiments", "list", "--json", home=tmp_path, QUAYSIDE_TRACKING_URI=auth.url)
    assert listed.returncode == 0, listed.stderr
    settings = Settings(home=tmp_path, tracking_uri=auth.url)
    assert Client(settings=settings).create_experiment("alice-by-login").name == "alice-by-login"

    logout = _quayside("logout", auth.url, home=tmp_path)
    assert logout.returncode == 0 and "logged out" in logout.stdout
    assert credentials.saved_token(tmp_path, auth.url) is None
    after = _quayside("experiments", "list", home=tmp_path, QUAYSIDE_TRACKING_URI=auth.url)
    assert after.returncode == 1

    for result in (bad, login, listed, logout, after):
        assert token not in result.stdout + result.stderr


def test_quayside_login_prompts_without_echo(auth: AuthServer, tmp_path: Path):
    """Without --token-stdin the token is asked for (hidden input); piped here, it still never echoes."""
    token = auth.tokens["alice"]
    login = _quayside("login", auth.url, home=tmp_path, stdin=token + "\n")
    assert login.returncode == 0, login.stderr
    assert "Token" in login.stdout + login.stderr
    assert token not in login.stdout + login.stderr
    assert credentials.saved_token(tmp_path, auth.url) == token
