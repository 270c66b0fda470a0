"""``quayside.compose.promotion.promote``, called from Python: load test, report to the registry, its verdict, the move.

The load runs in a child process, as the CLI's tests do: Locust monkey-patches the
standard library with gevent on import, which must not leak into the pytest process.
The SLO and the load shape are the model's promotion policy, set in the registry; the
report is the registry's (its files in the registry's artifact root), and so is the verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quayside.artifacts.keys import RECORD_SUFFIX
from quayside.errors import UsageError
from tests.db.fixtures import own_server as own_server  # fixtures, re-exported for pytest
from tests.loadtesting.conftest import home as home
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

home, server = sys.argv[1], sys.argv[2] or None
lines = []
result = promote(
    "members", 2, to="production", options=LoadOptions(users=4, spawn_rate=4, duration_s=2),
    client=RegistryClient(settings=Settings(home=home, tracking_uri=server)), log=lines.append,
)
print(json.dumps({
    "passed": result.passed,
    "policy_slo": result.policy.slo,
    "report": result.report.to_dict(),
    "document": result.document,
    "version": [result.version.version, result.version.stage],
    "promoted": None if result.promoted is None else [result.promoted.version, result.promoted.stage],
    "log": lines,
}))
"""

QUICK = {"min_duration_s": 1}
"""The default policy wants 10 s of load; these tests run 2 s."""


def _promote(home: Path, server: str = "") -> dict[str, Any]:
    """Promote 'members' 2 to production from a child process, through the local store or ``server``."""
    result = subprocess.run(
        [sys.executable, "-c", PROMOTE, str(home), server], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_passing_report_is_stored_and_judged_by_the_registry_and_the_version_moves(home, staged):
    staged.set_policy("members", slo="error_rate<=0,p99_ms<=5000", **QUICK)
    result = _promote(home)

    assert result["passed"] is True and result["policy_slo"] == "error_rate<=0,p99_ms<=5000"
    assert result["version"] == [2, "staging"]  # as it was before the gate
    assert result["promoted"] == [2, "production"]
    assert staged.get_version("members", 2).stage == "production"
    assert staged.get_version("members", 1).stage == "archived"

    report_id = result["report"]["id"]
    assert result["report"]["qualifies"] is True and result["report"]["verdict"]["passed"] is True
    assert result["report"]["package_digest"] == staged.get_version("members", 2).digest
    assert result["report"]["tested"]["kind"] == "package"
    (listed,) = staged.loadtest_reports("members", 2)
    assert listed.id == report_id and listed.passed is True
    stored = home / "artifacts" / "loadtests" / "members" / "2" / report_id
    stored_files = sorted(p.name for p in stored.iterdir() if not p.name.endswith(RECORD_SUFFIX))
    assert stored_files == ["report.html", "report.json"]  # (each with the store's digest record beside it)
    assert json.loads((stored / "report.json").read_text())["summary"]["failures"] == 0
    assert result["document"]["summary"]["failures"] == 0 and result["document"]["timeseries"]

    entry = staged.history("members", 2)[-1]
    assert (entry.action, entry.to_value, entry.override) == ("transition", "production", False)
    assert entry.evidence["loadtest_report"] == report_id and report_id in entry.reason
    assert entry.evidence["slo"] == "error_rate<=0,p99_ms<=5000"
    assert set(entry.evidence["figures"]) == {"error_rate", "p99_ms"}
    assert any(
        line.startswith("load-testing models:/members/2 at http://127.0.0.1:") for line in result["log"]
    )


def test_a_failing_report_is_kept_and_judged_failing_and_nothing_moves(home, staged):
    staged.set_policy("members", slo="p95_ms<=0.001", **QUICK)
    before = registry_snapshot(staged)
    result = _promote(home)

    assert result["passed"] is False and result["promoted"] is None
    assert result["report"]["verdict"]["passed"] is False and result["report"]["qualifies"] is False
    assert any("missed p95_ms<=0.001" in problem for problem in result["report"]["problems"])
    assert registry_snapshot(staged) == before
    assert staged.get_version("members", 2).stage == "staging"
    assert [r.passed for r in staged.loadtest_reports("members", 2)] == [False]


def test_without_an_slo_in_the_policy_it_is_a_usage_error_before_any_load(home, staged):
    from quayside.compose.promotion import promote

    before = registry_snapshot(staged)
    with pytest.raises(UsageError, match="model 'members' has no SLO in its promotion policy"):
        promote("members", 2, client=staged)
    assert registry_snapshot(staged) == before
    assert not (home / "artifacts" / "loadtests").exists()


@pytest.mark.parametrize(
    ("policy", "options", "message"),
    [
        ({"min_users": 10}, {"users": 4}, "needs at least 10 users; --users 4 would not qualify"),
        ({"min_duration_s": 60}, {"duration_s": 2}, "needs a load test of at least 60 s"),
        ({"require_image": True}, {}, "requires a load test of the built image: pass --built"),
    ],
)
def test_a_load_shape_the_policy_would_refuse_is_a_usage_error_before_any_load(
    home, staged, policy, options, message
):
    from quayside.compose.promotion import promote
    from quayside.loadtesting.runner import LoadOptions

    staged.set_policy("members", slo="p99_ms<=5000", **policy)
    before = registry_snapshot(staged)
    with pytest.raises(UsageError, match=message):
        promote("members", 2, options=LoadOptions(**options), client=staged)
    assert registry_snapshot(staged) == before
    assert not (home / "artifacts" / "loadtests").exists()


def test_nothing_to_promote_to_is_a_usage_error(staged):
    from quayside.compose.promotion import promote

    with pytest.raises(UsageError, match="nothing to promote to"):
        promote("members", 2, to=None, client=staged)


def test_against_a_server_the_report_lies_with_the_server_and_its_audit_entry_names_it(
    own_server, mixed_table_package, tmp_path
):
    from quayside.compose.clients import RegistryClient
    from quayside.config import Settings

    server = own_server.start()
    client_home = tmp_path / "client-home"
    remote = RegistryClient(settings=Settings(home=client_home, tracking_uri=server.url))
    for _ in range(2):
        remote.register_model(str(mixed_table_package), "members")
    remote.transition("members", 2, "staging")
    remote.set_policy("members", slo="error_rate<=0,p99_ms<=5000", **QUICK)

    result = _promote(client_home, server.url)

    assert result["promoted"] == [2, "production"]
    report_id = result["report"]["id"]
    server_files = own_server.home / "artifacts" / "loadtests" / "members" / "2" / report_id
    assert (server_files / "report.json").is_file() and (server_files / "report.html").is_file()
    assert not [p for p in client_home.rglob("*") if p.name in ("report.json", "report.html")]
    assert not (client_home / "artifacts" / "loadtests").exists()
    entry = remote.history("members", 2)[-1]
    assert (entry.to_value, entry.evidence["loadtest_report"]) == ("production", report_id)
