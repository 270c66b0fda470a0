"""Load-test reports of a version: one layout (registry.loadtests) for the promotion gate, the API and the UI."""

from __future__ import annotations

import pytest

from quayside.errors import NotFoundError, UsageError
from quayside.loadtesting import report as loadtest_report
from quayside.registry import loadtests
from quayside.registry.store import RegistryStore
from tests.registry.conftest import unique


def sample_report(report_id: str, started_at: float, passed: bool) -> dict:
    return {
        "id": report_id,
        "model": "m",
        "target": "http://127.0.0.1:1",
        "protocol": "v2",
        "path": "/v2/models/m/infer",
        "rows_per_request": 1,
        "users": 2,
        "spawn_rate": 1.0,
        "duration_s": 3.0,
        "elapsed_s": 3.0,
        "started_at": started_at,
        "summary": {
            "requests": 30,
            "failures": 0,
            "error_rate": 0.0,
            "rps": 10.0,
            "p50_ms": 2.0,
            "p95_ms": 3.0,
        },
        "errors": [],
        "timeseries": [{"t": t, "rps": 10.0, "p50_ms": 2.0, "p95_ms": 3.0, "p99_ms": 4.0} for t in (1, 2, 3)],
        "verdict": {"passed": passed, "objectives": []},
    }


def test_reports_written_where_promote_writes_them_are_listed_newest_first_and_read(local_sqlite, packages):
    store = RegistryStore.from_settings(local_sqlite.settings)
    name = unique()
    store.register_version(name, packages[0], actor="tester")
    root = local_sqlite.settings.artifact_dir
    for report_id, started_at, passed in (("aaa1", 100.0, False), ("bbb2", 200.0, True)):
        loadtest_report.write_report(
            sample_report(report_id, started_at, passed), loadtests.report_dir(root, name, 1, report_id)
        )
    (loadtests.version_dir(root, name, 1) / "cut-short").mkdir()  # a run that never wrote its report

    listed = store.loadtest_reports(name, 1)
    assert [(r.id, r.passed) for r in listed] == [("bbb2", True), ("aaa1", False)]
    assert store.loadtest_report(name, 1, "aaa1")["timeseries"][2]["p99_ms"] == 4.0
    with pytest.raises(NotFoundError, match="no load-test report 'zzz'"):
        store.loadtest_report(name, 1, "zzz")
    with pytest.raises(UsageError, match="report id"):
        store.loadtest_report(name, 1, "../../registry")
    with pytest.raises(NotFoundError):
        store.loadtest_reports(name, 7)


def test_the_registry_reads_the_file_name_load_testing_writes():
    assert loadtests.REPORT_JSON == loadtest_report.REPORT_JSON
    assert loadtests.REPORT_HTML == loadtest_report.REPORT_HTML


def test_versions_registered_from_a_run_are_found_by_its_id(local_sqlite, packages):
    store = RegistryStore.from_settings(local_sqlite.settings)
    first, second = unique(), unique()
    store.register_version(first, packages[0], actor="t", source_run_id="run-a")
    store.register_version(second, packages[1], actor="t", source_run_id="run-a")
    store.register_version(second, packages[2], actor="t", source_run_id="run-b")
    found = store.versions_from_run("run-a")
    assert sorted((v.name, v.version) for v in found) == sorted([(first, 1), (second, 1)])
    assert store.versions_from_run("run-none") == []
