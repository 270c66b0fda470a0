"""``quayside.compose.promotion.promote``, called from Python: load test, report, verdict, transition.

The load runs in a child process, as the CLI's tests do: Locust monkey-patches the
standard library with gevent on import, which must not leak into the pytest process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quayside.errors import UsageError
from tests.loadtesting.conftest import home as home  # fixtures, re-exported for pytest
from tests.loadtesting.conftest import loadtest_dir as loadtest_dir
from tests.loadtesting.conftest import mixed_table_package as mixed_table_package
from tests.loadtesting.conftest import registry_snapshot
from tests.loadtesting.conftest import staged as staged

PROMOTE = """
import json, sys
from quayside.compose.clients import RegistryClient
from quayside.compose.promotion import promote
from quayside.config import Settings
from quayside.loadtesting.runner import LoadOptions

home, slo = sys.argv[1], sys.argv[2]
lines = []
result = promote(
    "members", 2, to="production", slo=slo, options=LoadOptions(users=4, spawn_rate=4, duration_s=2),
    client=RegistryClient(settings=Settings(home=home)), log=lines.append,
)
print(json.dumps({
    "passed": result.passed,
    "verdict_passed": result.verdict.passed,
    "slo": result.slo,
    "report_id": result.report_id,
    "report_path": str(result.report_path),
    "report": result.report,
    "version": [result.version.version, result.version.stage],
    "promoted": None if result.promoted is None else [result.promoted.version, result.promoted.stage],
    "log": lines,
}))
"""


def _promote(home: Path, slo: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROMOTE, str(home), slo], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_passing_slo_returns_the_result_and_moves_the_version(home, staged):
    result = _promote(home, "error_rate<=0,p99_ms<=5000")
    assert result["passed"] is True and result["verdict_passed"] is True
    assert result["slo"] == "error_rate<=0,p99_ms<=5000"
    assert result["version"] == [2, "staging"]  # as it was before the gate
    assert result["promoted"] == [2, "production"]
    assert staged.get_version("members", 2).stage == "production"
    assert staged.get_version("members", 1).stage == "archived"
    report_id = result["report_id"]
    stored = home / "artifacts" / "loadtests" / "members" / "2" / report_id
    assert Path(result["report_path"]) == stored / "report.json"
    assert json.loads((stored / "report.json").read_text())["verdict"]["passed"] is True
    assert result["report"]["id"] == report_id and result["report"]["summary"]["failures"] == 0
    entry = staged.history("members", 2)[-1]
    assert (entry.action, entry.to_value) == ("transition", "production")
    assert entry.evidence["loadtest_report"] == report_id and report_id in entry.reason
    assert any(
        line.startswith("load-testing models:/members/2 at http://127.0.0.1:") for line in result["log"]
    )


def test_a_failing_slo_returns_the_verdict_and_leaves_the_registry_unchanged(home, staged):
    before = registry_snapshot(staged)
    result = _promote(home, "p95_ms<=0.001")
    assert result["passed"] is False and result["promoted"] is None
    assert result["report"]["verdict"]["passed"] is False
    assert Path(result["report_path"]).is_file()
    assert registry_snapshot(staged) == before
    assert staged.get_version("members", 2).stage == "staging"


def test_without_an_slo_anywhere_it_is_a_usage_error_before_any_load(home, staged):
    from quayside.compose.promotion import promote

    before = registry_snapshot(staged)
    with pytest.raises(UsageError, match="no SLO for 'members'"):
        promote("members", 2, client=staged)
    assert registry_snapshot(staged) == before
    assert not (home / "artifacts" / "loadtests").exists()
