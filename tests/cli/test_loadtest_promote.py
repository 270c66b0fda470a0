"""``quayside promote``: a version moves only when its load test meets every objective; the audit log names the report."""

from __future__ import annotations

import json
from pathlib import Path

from tests.loadtesting.conftest import home as home  # fixtures, re-exported for pytest
from tests.loadtesting.conftest import loadtest_dir as loadtest_dir
from tests.loadtesting.conftest import mixed_table_package as mixed_table_package
from tests.loadtesting.conftest import registry_snapshot, run_cli
from tests.loadtesting.conftest import staged as staged


def _promote(home: Path, *args: str):
    return run_cli(
        "promote", "members", "2", "--to", "production", "--duration", "2s", "--users", "4", "--spawn-rate", "4",
        *args, env={"QUAYSIDE_HOME": str(home)},
    )  # fmt: skip


def test_a_passing_slo_promotes_and_the_audit_entry_names_the_stored_report(home, staged):
    result = _promote(home, "--slo", "error_rate<=0,p99_ms<=5000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert staged.get_version("members", 2).stage == "production"
    entry = staged.history("members", 2)[-1]
    assert (entry.action, entry.to_value) == ("transition", "production")
    report_id = entry.evidence["loadtest_report"]
    assert report_id in entry.reason
    stored = home / "artifacts" / "loadtests" / "members" / "2" / report_id
    report = json.loads((stored / "report.json").read_text())
    assert report["id"] == report_id and report["verdict"]["passed"] is True
    assert report["summary"]["failures"] == 0
    assert Path(entry.evidence["report_path"]) == stored / "report.json"
    assert (stored / "report.html").is_file()
    assert "promoted models:/members/2 to production" in result.stdout


def test_an_impossible_slo_refuses_exits_1_and_leaves_the_registry_unchanged(home, staged):
    before = registry_snapshot(staged)
    result = _promote(home, "--slo", "p95_ms<=0.001")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SLO not met" in result.stdout and "not promoted" in result.stdout
    assert registry_snapshot(staged) == before
    assert staged.get_version("members", 1).stage == "production"


def test_the_models_default_slo_is_used_when_slo_is_omitted(home, staged):
    assert _promote(home).returncode == 1  # no SLO anywhere: a usage error, nothing moves
    result = run_cli("registry", "slo", "set", "members", "p95_ms<=0.001", env={"QUAYSIDE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    shown = run_cli("registry", "slo", "show", "members", env={"QUAYSIDE_HOME": str(home)})
    assert shown.stdout.strip() == "p95_ms<=0.001"
    before = registry_snapshot(staged)
    refused = _promote(home)
    assert refused.returncode == 1 and "p95_ms" in refused.stdout
    assert registry_snapshot(staged) == before


def test_a_malformed_default_slo_is_refused_naming_the_term(home, staged):
    result = run_cli("registry", "slo", "set", "members", "p95<=3", env={"QUAYSIDE_HOME": str(home)})
    assert result.returncode == 1 and "p95<=3" in result.stderr
