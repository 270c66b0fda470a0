"""``quayside promote``: a version moves only when the registry's verdict on its load test passes the model's
policy; the report lives with the registry (local or a server) and the audit entry names it.

Promotion runs real load in a child process (Locust's gevent patching stays there), kept
short: the policies here accept a 2 s test of 4 users.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quayside.compose.clients import RegistryClient
from quayside.config import Settings
from quayside.registry.rest import API_PREFIX
from tests.db.fixtures import Server, clean_env
from tests.loadtesting.conftest import home as home  # fixtures, re-exported for pytest
from tests.loadtesting.conftest import loadtest_dir as loadtest_dir
from tests.loadtesting.conftest import mixed_table_package as mixed_table_package
from tests.loadtesting.conftest import registry_snapshot, run_cli

PASSING_SLO = "error_rate<=0,p99_ms<=5000"


def stage_members(client: RegistryClient, package: Path) -> RegistryClient:
    """'members' v1 in production (an admin's override: there was no load test yet) and v2 in staging."""
    client.register_model(str(package), "members")
    client.set_policy("members", min_duration_s=2, reason="short tests")
    client.transition("members", 1, "staging", reason="first")
    client.transition("members", 1, "production", reason="first, before the gate", override=True)
    client.register_model(str(package), "members")
    client.transition("members", 2, "staging", reason="looks good")
    client.set_alias("members", "challenger", 2)
    return client


@pytest.fixture
def staged(home: Path, mixed_table_package: Path) -> RegistryClient:
    return stage_members(RegistryClient(settings=Settings(home=home)), mixed_table_package)


def _promote(env: dict[str, str], *args: str):
    return run_cli(
        "promote", "members", "2", "--to", "production", "--duration", "2s", "--users", "4", "--spawn-rate", "4",
        *args, env=env,
    )  # fmt: skip


def _local(home: Path) -> dict[str, str]:
    return clean_env(QUAYSIDE_HOME=str(home))


def test_a_passing_load_test_promotes_and_the_audit_entry_names_the_stored_report(home, staged):
    staged.set_policy("members", slo=PASSING_SLO)
    result = _promote(_local(home))
    assert result.returncode == 0, result.stdout + result.stderr
    assert staged.get_version("members", 2).stage == "production"
    entry = staged.history("members", 2)[-1]
    assert (entry.action, entry.to_value, entry.override) == ("transition", "production", False)
    report_id = entry.evidence["loadtest_report"]
    assert report_id in entry.reason and entry.evidence["slo"] == PASSING_SLO
    stored = home / "artifacts" / "loadtests" / "members" / "2" / report_id
    report = json.loads((stored / "report.json").read_text())
    assert report["id"] == report_id and report["summary"]["failures"] == 0
    assert report["tested"] == {"kind": "package", "package_digest": staged.get_version("members", 2).digest}
    assert (stored / "report.html").is_file()
    [listed] = staged.loadtest_reports("members", 2)
    assert (listed.id, listed.passed, listed.judgement.qualifies) == (report_id, True, True)
    assert "promoted models:/members/2 to production" in result.stdout
    assert f"report {report_id} stored" in result.stdout


def test_promote_with_two_workers_gates_on_one_report_of_locusts_master_and_workers(home, staged):
    staged.set_policy("members", slo=PASSING_SLO)
    result = _promote(_local(home), "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert staged.get_version("members", 2).stage == "production"
    [listed] = staged.loadtest_reports("members", 2)
    stored = home / "artifacts" / "loadtests" / "members" / "2" / listed.id / "report.json"
    report = json.loads(stored.read_text())
    workers = [p for p in report["generator"]["by_process"] if p["role"] == "worker"]
    assert len(workers) == 2 and all(w["requests"] > 0 for w in workers)
    assert sum(w["requests"] for w in workers) == report["summary"]["requests"] == listed.summary["requests"]
    assert "Locust master and 2 workers" in result.stdout


def test_an_slo_the_run_misses_refuses_exits_1_and_leaves_the_registry_unchanged(home, staged):
    staged.set_policy("members", slo="p95_ms<=0.001")
    before = registry_snapshot(staged)
    result = _promote(_local(home))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SLO not met" in result.stdout and "not promoted" in result.stdout
    assert registry_snapshot(staged) == before
    assert staged.get_version("members", 1).stage == "production"
    [kept] = staged.loadtest_reports("members", 2)  # the report is kept, judged a miss
    assert kept.passed is False and not kept.judgement.qualifies


def test_without_an_slo_in_the_policy_nothing_is_loaded_and_the_message_says_how_to_set_one(home, staged):
    before = registry_snapshot(staged)
    result = _promote(_local(home))
    assert result.returncode == 1
    assert "quayside registry policy set members --slo" in result.stderr and "Traceback" not in result.stderr
    assert registry_snapshot(staged) == before and staged.loadtest_reports("members", 2) == []


def test_a_test_shorter_than_the_policys_minimum_is_refused_before_any_load(home, staged):
    staged.set_policy("members", slo=PASSING_SLO, min_duration_s=30)
    result = _promote(_local(home))
    assert result.returncode == 1
    assert "at least 30 s" in result.stderr and staged.loadtest_reports("members", 2) == []


# --- against a server --------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "server-home"
    home.mkdir()
    running = Server(home, f"sqlite:///{home / 'quayside.db'}")
    yield running.start()
    running.stop()


def _files(root: Path) -> list[Path]:
    return [Path(folder) / name for folder, _, names in os.walk(root) for name in names]


def test_promote_against_a_server_keeps_the_report_on_the_servers_side(tmp_path, server, mixed_table_package):
    setup = RegistryClient(server.url, settings=Settings(home=tmp_path / "setup-home"))
    stage_members(setup, mixed_table_package).set_policy("members", slo=PASSING_SLO)
    client_home = tmp_path / "client-home"
    client_home.mkdir()

    env = clean_env(QUAYSIDE_HOME=str(client_home), QUAYSIDE_TRACKING_URI=server.url)
    result = _promote(env)
    assert result.returncode == 0, result.stdout + result.stderr

    assert setup.get_version("members", 2).stage == "production"
    listed = httpx.get(f"{server.url}{API_PREFIX}/models/members/versions/2/loadtests").json()["reports"]
    [report] = listed
    assert report["passed"] is True and report["qualifies"] is True
    stored = server.home / "artifacts" / "loadtests" / "members" / "2" / report["id"]
    assert json.loads((stored / "report.json").read_text())["id"] == report["id"]
    assert (stored / "report.html").is_file()
    entry = setup.history("members", 2)[-1]
    assert (entry.action, entry.to_value) == ("transition", "production")
    assert entry.evidence["loadtest_report"] == report["id"]
    assert entry.evidence["tested"]["package_digest"] == setup.get_version("members", 2).digest

    listed_by_the_cli = run_cli("registry", "reports", "members", "2", env=env)
    assert listed_by_the_cli.returncode == 0 and report["id"] in listed_by_the_cli.stdout

    kept_here: list[Any] = [p for p in _files(client_home) if p.name in ("report.json", "report.html")]
    assert kept_here == [] and not any("loadtests" in p.parts for p in _files(client_home))
