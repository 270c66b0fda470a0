"""``quayside registry policy|transition|alias set|history|reports|report``: the promotion gate as a user meets it.

The CLI runs in this process through its own entry point (its error handling included);
reports are uploaded with figures the test chooses (tests/registry/reports.py), since
what is under test is the registry's rule, not load generation (tests/cli/test_loadtest_promote.py
runs real load).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from quayside import save_model
from quayside.cli import console
from quayside.compose.clients import RegistryClient
from quayside.config import Settings
from tests.registry.reports import HTML, SLO, add_report

MODEL = "churn"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("policy-package") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(10))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


class Cli:
    """``quayside ARGS`` in this process: (exit code, stdout, stderr)."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        for variable in [v for v in os.environ if v.startswith("QUAYSIDE_")]:
            monkeypatch.delenv(variable)
        monkeypatch.setenv("QUAYSIDE_HOME", str(home))
        monkeypatch.setenv("QUAYSIDE_ACTOR", "ops")
        # Wide enough that no table cell a test reads is wrapped.
        monkeypatch.setattr(console.out, "width", 250)
        monkeypatch.setattr(console.err, "width", 250)
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from quayside.cli.app import main

        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        output = self.capsys.readouterr()
        return exited.value.code or 0, output.out, output.err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, out + err
        return out


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(home, monkeypatch, capsys)


@pytest.fixture
def registry(home: Path, package: Path, cli: Cli) -> RegistryClient:
    """'churn' v1 in staging, with an SLO and 'champion' protected; what the CLI's user sees, read directly."""
    client = RegistryClient(settings=Settings(home=home, actor="setup"))
    client.register_model(str(package), MODEL)
    client.transition(MODEL, 1, "staging", reason="looks good")
    cli.ok("registry", "policy", "set", MODEL, "--slo", SLO, "--protect-aliases", "champion")
    return client


def snapshot(registry: RegistryClient) -> tuple[str, list[str], int]:
    version = registry.get_version(MODEL, 1)
    return version.stage, list(version.aliases), len(registry.history(MODEL))


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


# --- refusals, overrides, evidence ---------------------------------------------------------------


def test_transition_to_production_without_a_report_is_refused_naming_quayside_promote(cli, registry):
    before = snapshot(registry)
    code, _, err = cli("registry", "transition", MODEL, "1", "--to", "production", "--reason", "no load test")
    assert code == 1
    line = one_error_line(err)
    assert f"quayside promote {MODEL} 1" in line and SLO in line
    assert snapshot(registry) == before == ("staging", [], before[2])


def test_a_protected_alias_without_a_report_is_refused_and_nothing_moves(cli, registry):
    before = snapshot(registry)
    code, _, err = cli("registry", "alias", "set", MODEL, "champion", "1")
    assert code == 1
    assert f"quayside promote {MODEL} 1 --alias champion" in one_error_line(err)
    assert snapshot(registry) == before
    cli.ok("registry", "alias", "set", MODEL, "challenger", "1")  # unprotected aliases move freely
    assert list(registry.get_version(MODEL, 1).aliases) == ["challenger"]
    moved = cli.ok("registry", "alias", "set", MODEL, "stable", "1", "--override", "--reason", "habit")
    assert "overridden" not in moved and registry.history(MODEL)[-1].override is False  # nothing to override


def test_a_failing_report_is_named_in_the_refusal(cli, registry):
    failing = add_report(registry, MODEL, 1, p95_ms=80.0)
    before = snapshot(registry)
    code, _, err = cli("registry", "transition", MODEL, "1", "--to", "production")
    line = one_error_line(err)
    assert code == 1 and failing.id in line and "missed p95_ms<=25 (measured 80)" in line
    assert snapshot(registry) == before


def test_an_override_needs_a_reason_and_then_moves_marked_in_the_history(cli, registry):
    before = snapshot(registry)
    code, _, err = cli("registry", "transition", MODEL, "1", "--to", "production", "--override")
    assert code == 1 and "--reason" in one_error_line(err)
    assert snapshot(registry) == before

    out = cli.ok(
        "registry", "transition", MODEL, "1", "--to", "production", "--override", "--reason", "hotfix"
    )
    assert "is now in production" in out
    cli.ok("registry", "alias", "set", MODEL, "champion", "1", "--override", "--reason", "hotfix")
    version = registry.get_version(MODEL, 1)
    assert (version.stage, list(version.aliases)) == ("production", ["champion"])
    moved, aliased = registry.history(MODEL)[-2:]
    assert (moved.action, moved.to_value, moved.override, moved.actor) == (
        "transition",
        "production",
        True,
        "ops",
    )
    assert (aliased.action, aliased.alias, aliased.override) == ("alias_set", "champion", True)

    shown = cli.ok("registry", "history", MODEL)
    assert "transition (override)" in shown and "alias_set champion (override)" in shown
    assert json.loads(cli.ok("registry", "history", MODEL, "--json"))[-1]["override"] is True


def test_a_passing_report_clears_the_move_and_the_history_names_it(cli, registry):
    report = add_report(registry, MODEL, 1)
    cli.ok("registry", "transition", MODEL, "1", "--to", "production", "--reason", "load tested")
    entry = registry.history(MODEL)[-1]
    assert (entry.to_value, entry.override, entry.evidence["loadtest_report"]) == (
        "production",
        False,
        report.id,
    )
    shown = cli.ok("registry", "history", MODEL, "--version", "1")
    assert f"loadtest_report={report.id}, slo={SLO}" in shown
    assert "(override)" not in shown


def test_the_evidence_option_is_gone(cli, registry):
    code, _, err = cli("registry", "transition", MODEL, "1", "--to", "production", "--evidence", "k=v")
    assert code == 2 and "--evidence" in err
    assert registry.get_version(MODEL, 1).stage == "staging"


# --- reports ---------------------------------------------------------------------------------------


def test_reports_are_listed_newest_first_with_the_registrys_verdict(cli, registry):
    import time

    older = add_report(registry, MODEL, 1, started_at=time.time() - 60, p95_ms=80.0)
    newer = add_report(registry, MODEL, 1, users=2, duration_s=12.0)
    listed = cli.ok("registry", "reports", MODEL, "1")
    rows = [line for line in listed.splitlines() if older.id in line or newer.id in line]
    assert [newer.id in rows[0], older.id in rows[1]] == [True, True]
    assert "met" in rows[0] and "yes" in rows[0] and "12 s" in rows[0]
    assert "missed" in rows[1] and "missed p95_ms<=25 (measured 80)" in rows[1]
    assert f"package {registry.get_version(MODEL, 1).digest[:12]}" in rows[0]

    as_json = json.loads(cli.ok("registry", "reports", MODEL, "1", "--json"))
    assert [r["id"] for r in as_json] == [newer.id, older.id]
    assert [r["passed"] for r in as_json] == [True, False]

    shown = cli.ok("registry", "report", MODEL, "1", older.id)
    assert f"report {older.id} of models:/{MODEL}/1" in shown
    assert "3000 requests, 0 failures" in shown and "SLO not met" in shown and "does not qualify" in shown
    document = json.loads(cli.ok("registry", "report", MODEL, "1", newer.id, "--json"))
    assert document["record"]["qualifies"] is True and len(document["timeseries"]) == 3


def test_a_reports_html_page_is_written_where_asked(cli, registry, tmp_path):
    stored = add_report(registry, MODEL, 1)
    page = tmp_path / "page.html"
    assert str(page) in cli.ok("registry", "report", MODEL, "1", stored.id, "--html", str(page))
    assert page.read_text() == HTML


def test_a_version_without_reports_says_how_to_make_one(cli, registry):
    assert f"quayside promote {MODEL} 1" in cli.ok("registry", "reports", MODEL, "1")
    code, _, err = cli("registry", "report", MODEL, "1", "nosuchreport")
    assert code == 1 and "nosuchreport" in one_error_line(err)


# --- the policy ----------------------------------------------------------------------------------


def test_policy_set_and_show_round_trip(cli, registry):
    out = cli.ok(
        "registry", "policy", "set", MODEL, "--slo", "p95_ms<=40, error_rate<=0.01",
        "--protect-stages", "staging,production", "--protect-aliases", "champion,stable",
        "--max-age", "12h", "--min-users", "4", "--min-duration", "30s", "--require-image",
        "--reason", "stricter",
    )  # fmt: skip
    assert "staging, production" in out and "champion, stable" in out and "12 hours" in out
    policy = json.loads(cli.ok("registry", "policy", "show", MODEL, "--json"))
    assert {k: v for k, v in policy.items() if k != "updated_at"} == {
        "protected_stages": ["staging", "production"],
        "protected_aliases": ["champion", "stable"],
        "slo": "p95_ms<=40,error_rate<=0.01",
        "max_report_age_s": 43_200,
        "min_users": 4,
        "min_duration_s": 30.0,
        "require_image": True,
        "budget": None,
        "require_build": False,
        "updated_by": "ops",
    }
    assert registry.get_policy(MODEL).to_dict() == policy
    shown = cli.ok("registry", "policy", "show", MODEL)
    for expected in ("p95_ms<=40,error_rate<=0.01", "30 s", "yes", "by ops", "12 hours"):
        assert expected in shown

    cli.ok(
        "registry", "policy", "set", MODEL, "--protect-aliases", "", "--slo", "", "--no-require-image",
        "--max-age", "7d", "--min-duration", "0",
    )  # fmt: skip
    cleared = registry.get_policy(MODEL)
    assert (cleared.protected_aliases, cleared.slo, cleared.require_image) == ((), None, False)
    assert (cleared.max_report_age_s, cleared.min_duration_s, cleared.protected_stages) == (
        7 * 86_400,
        0.0,
        ("staging", "production"),
    )
    entry = registry.history(MODEL)[-1]
    assert (entry.action, entry.actor) == ("policy_set", "ops")
    last = [line for line in cli.ok("registry", "history", MODEL).splitlines() if "policy_set" in line][-1]
    assert "changed: max_report_age_s, min_duration_s, protected_aliases, require_image, slo" in last


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--protect-stages", "candidate"], "candidate"),
        (["--protect-stages", "prod"], "unknown stage 'prod'"),
        (["--slo", "p95<=3"], "p95<=3"),
        (["--slo", "p95_ms<=fast"], "fast"),
        (["--min-users", "-3"], "--min-users"),
        (["--max-age", "soon"], "--max-age"),
        (["--min-duration", "-5s"], "--min-duration"),
        (["--protect-aliases", "bad alias!"], "bad alias!"),
        ([], "nothing to change"),
    ],
)
def test_bad_policy_input_is_one_readable_line_and_changes_nothing(cli, registry, arguments, named):
    before = registry.get_policy(MODEL)
    code, _, err = cli("registry", "policy", "set", MODEL, *arguments)
    assert code == 1
    assert named in one_error_line(err)
    assert registry.get_policy(MODEL) == before


def test_the_old_slo_commands_are_gone(cli, registry):
    code, _, _ = cli("registry", "slo", "show", MODEL)
    assert code == 2


def test_a_policy_of_a_model_that_does_not_exist_is_one_error_line(cli, registry):
    code, _, err = cli("registry", "policy", "show", "no-such-model")
    assert code == 1 and "no-such-model" in one_error_line(err)
