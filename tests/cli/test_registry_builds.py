"""``quayside registry builds|budget`` and the policy's ``--budget``/``--require-build``: build records as a user meets them.

The CLI runs in this process through its own entry point; build records are the documents
``quayside build`` sends, with figures the test chooses (tests/registry/builds.py): what is
under test is the registry's rule, not building images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from quayside import save_model
from quayside.compose.clients import RegistryClient
from quayside.config import Settings
from tests.cli.test_registry_policy import Cli, one_error_line
from tests.registry.builds import BUDGET, REPO_DIGEST, add_build
from tests.registry.reports import SLO, add_report

MODEL = "churn"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("builds-package") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(10))
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "home", monkeypatch, capsys)


@pytest.fixture
def registry(tmp_path: Path, package: Path, cli: Cli) -> RegistryClient:
    """'churn' v1 in staging with a passing load-test report and an SLO; read directly."""
    client = RegistryClient(settings=Settings(home=tmp_path / "home", actor="setup"))
    client.register_model(str(package), MODEL)
    client.transition(MODEL, 1, "staging", reason="looks good")
    client.set_policy(MODEL, slo=SLO)
    add_report(client, MODEL, 1)
    return client


def test_builds_are_listed_newest_first_with_the_registrys_verdict(cli, registry):
    now = int(time.time() * 1000)
    older = add_build(registry, MODEL, 1, size_bytes=231_400_000, built_at=now - 60_000)
    newer = add_build(registry, MODEL, 1, repo_digest=REPO_DIGEST, built_at=now)
    cli.ok("registry", "budget", "set", MODEL, "image_mb<=200")

    listed = cli.ok("registry", "builds", MODEL, "1")
    rows = [line for line in listed.splitlines() if older.id in line or newer.id in line]
    assert newer.id in rows[0] and older.id in rows[1]
    assert REPO_DIGEST in rows[0] and "123.5 MB" in rows[0] and "1.80 s" in rows[0] and "12.5 ms" in rows[0]
    assert "passed" in rows[0] and "pass" in rows[0]
    assert "quayside/iris:1" in rows[1] and "231.4 MB" in rows[1]
    assert "missed image_mb<=200 (measured 231.4)" in rows[1]

    as_json = json.loads(cli.ok("registry", "builds", MODEL, "1", "--json"))
    assert [(b["id"], b["passed"]) for b in as_json] == [(newer.id, True), (older.id, False)]
    assert as_json[1]["problems"] == ["missed image_mb<=200 (measured 231.4)"]


def test_a_version_without_builds_says_how_to_make_one(cli, registry):
    out = cli.ok("registry", "builds", MODEL, "1")
    assert (
        f"no builds recorded for version 1 of '{MODEL}'" in out and f"quayside build models:/{MODEL}/1" in out
    )
    code, _, err = cli("registry", "builds", "no-such-model", "1")
    assert code == 1 and "no-such-model" in one_error_line(err)


def test_budget_set_and_show_round_trip_and_clear(cli, registry):
    assert "has no build budget" in cli.ok("registry", "budget", "show", MODEL)
    out = cli.ok("registry", "budget", "set", MODEL, "image_mb <= 200, cold_start_s<=3", "--reason", "slim")
    assert BUDGET in out
    assert json.loads(cli.ok("registry", "budget", "show", MODEL, "--json")) == {
        "budget": BUDGET,
        "require_build": False,
    }
    entry = registry.history(MODEL)[-1]
    assert (entry.action, entry.reason, entry.actor, entry.evidence["after"]["budget"]) == (
        "policy_set",
        "slim",
        "ops",
        BUDGET,
    )
    assert "--require-build" in cli.ok("registry", "budget", "show", MODEL)

    cli.ok("registry", "budget", "set", MODEL, "")
    assert registry.get_policy(MODEL).budget is None


@pytest.mark.parametrize(
    ("budget", "named"),
    [
        ("image_gb<=1", "image_gb"),
        ("image_mb<=big", "big"),
        ("image_mb<=1,", "empty term"),
        ("p95_ms<=3", "p95_ms"),
    ],
)
def test_a_bad_budget_is_one_readable_line_and_changes_nothing(cli, registry, budget, named):
    before = registry.get_policy(MODEL)
    code, _, err = cli("registry", "budget", "set", MODEL, budget)
    assert code == 1 and named in one_error_line(err)
    code, _, err = cli("registry", "policy", "set", MODEL, "--budget", budget)
    assert code == 1 and named in one_error_line(err)
    assert registry.get_policy(MODEL) == before


def test_policy_set_require_build_gates_production_until_a_build_passes(cli, registry):
    shown = cli.ok(
        "registry", "policy", "set", MODEL, "--require-build", "--budget", "image_mb<=200", "--reason", "builds"
    )  # fmt: skip
    assert "image_mb<=200" in shown and "yes (smoke test passed, within budget image_mb<=200)" in shown
    policy = json.loads(cli.ok("registry", "policy", "show", MODEL, "--json"))
    assert (policy["budget"], policy["require_build"]) == ("image_mb<=200", True)

    code, _, err = cli("registry", "transition", MODEL, "1", "--to", "production")
    line = one_error_line(err)
    assert code == 1 and "has no passing build" in line and f"quayside build models:/{MODEL}/1" in line
    assert registry.get_version(MODEL, 1).stage == "staging"

    build = add_build(registry, MODEL, 1)
    assert "is now in production" in cli.ok("registry", "transition", MODEL, "1", "--to", "production")
    assert f"build={build.id}" in cli.ok("registry", "history", MODEL, "--version", "1")

    cli.ok("registry", "policy", "set", MODEL, "--no-require-build")
    assert registry.get_policy(MODEL).require_build is False
    assert "require build" in cli.ok("registry", "policy", "show", MODEL)
