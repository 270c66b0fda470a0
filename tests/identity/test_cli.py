"""``quayside admin|users|groups|grants|tokens`` end to end, on a database of their own: the first admin
from a real subprocess, the rest in this process through the CLI's own entry point."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quayside.db.engine import Sessions
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.identity.store import IdentityStore
from tests.db.fixtures import QUAYSIDE, clean_env

TOKEN = re.compile(r"qs_[0-9a-f]{12}_[A-Za-z0-9_\-]{43}")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def quayside(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QUAYSIDE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_env(QUAYSIDE_HOME=str(home), QUAYSIDE_ACTOR="ops"),
        timeout=120,
    )


def ok(home: Path, *args: str, stdin: str = "") -> str:
    result = quayside(home, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def store(home: Path) -> IdentityStore:
    return IdentityStore(Sessions(f"sqlite:///{home / 'quayside.db'}", "identity"))


class Cli:
    """``quayside ARGS`` run in this process, the CLI's own error handling included (faster than a
    subprocess, for the commands whose output is all a test reads)."""

    def __init__(
        self, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for variable in [v for v in os.environ if v.startswith("QUAYSIDE_")]:
            monkeypatch.delenv(variable)
        monkeypatch.setenv("QUAYSIDE_HOME", str(home))
        monkeypatch.setenv("QUAYSIDE_ACTOR", "ops")
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        from quayside.cli.app import main

        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        output = self.capsys.readouterr()
        return exited.value.code or 0, output.out, output.err

    def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = self(*args, stdin=stdin)
        assert code == 0, err
        return out


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(home, monkeypatch, capsys)


def test_the_first_admin_is_made_locally_and_gets_a_one_time_token(home: Path):
    result = quayside(home, "admin", "create-user", "root", "--admin", stdin="a long password\n")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert TOKEN.fullmatch(token), result.stdout  # alone on stdout, for TOKEN=$(...)
    assert "created admin user 'root'" in result.stderr and "shown once" in result.stderr
    identities = store(home)
    assert identities.authenticate_token(token).is_admin
    assert not identities.get_user("root").has_password  # stdin is no terminal: not asked

    result = quayside(home, "admin", "create-user", "alice", "--password-stdin", stdin="a long password\n")
    assert result.returncode == 0, result.stderr
    assert identities.authenticate_password("alice", "a long password").name == "alice"
    assert identities.authenticate_token(result.stdout.strip()).name == "alice"
    service = ok(home, "admin", "create-user", "ci", "--service").strip()
    assert identities.authenticate_token(service).kind == "service"
    assert {e.actor for e in identities.auth_events() if e.action == "user_created"} == {"local:ops"}


def test_users_groups_grants_and_tokens_from_the_command_line(home: Path, cli: Cli):
    cli.ok("users", "create", "alice", "--password-stdin", stdin="a long password\n")
    cli.ok("users", "create", "bot", "--service")
    cli.ok("groups", "create", "ml")
    assert "group 'ml': alice" in cli.ok("groups", "add", "ml", "alice")
    assert "group:ml has edit on model 'iris'" in ok(
        home, "grants", "set", "group:ml", "model", "iris", "edit"
    )
    assert "bot has read on experiment '1'" in cli.ok("grants", "set", "bot", "experiment", "1", "READ")

    grants = json.loads(cli.ok("grants", "list", "--json"))
    assert [(g["principal"], g["kind"], g["key"], g["level"]) for g in grants] == [
        ("bot", "experiment", "1", "read"),
        ("group:ml", "model", "iris", "edit"),
    ]
    assert [g["principal"] for g in json.loads(cli.ok("grants", "list", "model", "iris", "--json"))] == [
        "group:ml"
    ]
    users = {u["name"]: u for u in json.loads(cli.ok("users", "list", "--json"))}
    assert users["alice"]["groups"] == ["ml"] and users["bot"]["kind"] == "service"
    assert [g["members"] for g in json.loads(cli.ok("groups", "list", "--json"))] == [["alice"]]

    identities = store(home)
    alice = identities.identity("alice")
    assert identities.level_for(alice, Resource(ResourceKind.MODEL, "iris"), default=Level.NONE) == Level.EDIT
    cli.ok("groups", "remove", "ml", "alice")
    assert (
        identities.level_for(
            identities.identity("alice"), Resource(ResourceKind.MODEL, "iris"), default=Level.NONE
        )
        == Level.NONE
    )
    assert "holds no grant" in cli.ok("grants", "set", "group:ml", "model", "iris", "none")

    token = cli.ok("tokens", "create", "bot", "--name", "deploy", "--expires-in", "30d").strip()
    assert TOKEN.fullmatch(token)
    listed = json.loads(cli.ok("tokens", "list", "bot", "--json"))
    assert [(t["name"], t["status"]) for t in listed] == [("deploy", "active")]
    assert 29 * 86400_000 < listed[0]["expires_at"] - listed[0]["created_at"] <= 30 * 86400_000
    assert token not in cli.ok("tokens", "list")
    assert "revoked token" in cli.ok("tokens", "revoke", str(listed[0]["id"]))
    assert json.loads(cli.ok("tokens", "list", "--json"))[0]["status"] == "revoked"

    cli.ok("users", "set-password", "alice", "--password-stdin", stdin="another password\n")
    assert identities.authenticate_password("alice", "another password").name == "alice"
    cli.ok("users", "disable", "alice")
    assert identities.get_user("alice").disabled
    log = json.loads(cli.ok("admin", "auth-log", "--json", "-n", "100"))
    assert {
        "user_created",
        "group_created",
        "member_added",
        "grant_set",
        "token_revoked",
        "user_disabled",
    } <= {e["action"] for e in log}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grants", "set", "nobody", "model", "iris", "read"], "error: no user named 'nobody'"),
        (
            ["grants", "set", "x", "dataset", "iris", "read"],
            "error: a grant is on an 'experiment' or a 'model'",
        ),
        (["grants", "set", "x", "model", "iris", "admin"], "error: permission must be one of none, read"),
        (["tokens", "create", "nobody", "--expires-in", "soon"], "error: a duration is a positive number"),
        (["tokens", "revoke", "42"], "error: no token with id 42"),
        (["users", "create", "bad name"], "error: user name 'bad name' is invalid"),
        (
            ["users", "create", "bot", "--service", "--password-stdin"],
            "error: a service account has no password",
        ),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(cli: Cli, args: list[str], message: str):
    code, _, err = cli(*args)
    assert code == 1
    assert err.strip().splitlines() == [err.strip()], err
    assert err.startswith(message), err


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("admin", ["create-user", "auth-log"]),
        ("users", ["list", "create", "disable", "enable", "set-password", "set-admin"]),
        ("groups", ["list", "create", "add", "remove", "delete"]),
        ("grants", ["set", "list"]),
        ("tokens", ["create", "list", "revoke"]),
    ],
)
def test_every_group_has_readable_help(cli: Cli, group: str, commands: list[str]):
    text = cli.ok(group, "--help")
    assert f"{group} [OPTIONS] COMMAND" in text
    listed = re.findall(r"^│ (\S+) +\S", text, flags=re.MULTILINE)
    assert [name for name in listed if not name.startswith("-")] == commands
