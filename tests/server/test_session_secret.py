"""The web UI's session key file: made once per home, whole, and shared by every server on it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quayside.config import Settings
from quayside.errors import UsageError
from quayside.server.sessions import SECRET_FILE, load_secret
from tests.db.fixtures import QUAYSIDE, clean_env, free_port

SERVERS = 8
ROUNDS = 3

# Each process waits for the go file, then loads the key and prints it: all start at once.
_LOAD_AT_ONCE = """
import os, sys, time
from quayside.config import Settings
from quayside.server.sessions import load_secret
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
print(load_secret(Settings(home=sys.argv[1])).decode())
"""


def test_the_key_is_made_once_private_and_read_back(tmp_path):
    first = load_secret(Settings(home=tmp_path))
    assert len(first) >= 48
    assert load_secret(Settings(home=tmp_path)) == first
    path = tmp_path / SECRET_FILE
    assert path.read_bytes().strip() == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no scratch file is left


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_servers_starting_at_once_on_one_home_all_get_the_one_key_in_the_file(tmp_path, round_):
    home, go = tmp_path / "home", tmp_path / "go"
    env = clean_env()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _LOAD_AT_ONCE, str(home), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(SERVERS)
    ]
    go.touch()
    keys = set()
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        keys.add(out.strip())
    assert len(keys) == 1
    (key,) = keys
    assert key and (home / SECRET_FILE).read_text().strip() == key
    assert sorted(p.name for p in home.iterdir()) == [SECRET_FILE]


def test_an_empty_key_file_is_refused_naming_it_instead_of_signing_with_an_empty_key(tmp_path):
    (tmp_path / SECRET_FILE).write_bytes(b"\n")
    with pytest.raises(UsageError, match=r"session key file .* is empty; delete it"):
        load_secret(Settings(home=tmp_path))


def test_a_configured_secret_is_used_and_no_file_is_made(tmp_path):
    settings = Settings(home=tmp_path, session_secret="one secret for every replica")
    assert load_secret(settings) == b"one secret for every replica"
    assert not (tmp_path / SECRET_FILE).exists()


def test_a_server_with_auth_on_an_empty_key_file_exits_with_one_line(tmp_path):
    env = clean_env(QUAYSIDE_HOME=str(tmp_path))
    made = subprocess.run(
        [QUAYSIDE, "admin", "create-user", "alice", "--admin"], env=env, capture_output=True
    )
    assert made.returncode == 0, made.stderr
    (tmp_path / SECRET_FILE).write_bytes(b"")
    started = subprocess.run(
        [QUAYSIDE, "server", "--auth", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1
    assert (
        started.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: the session key file {tmp_path / SECRET_FILE} is empty; delete it")
    )
    assert "Traceback" not in started.stderr
