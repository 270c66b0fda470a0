"""Load-test reports as registry records: files written whole by the store, rows bound to the version, judged on read."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from quayside import scratch
from quayside.errors import InvalidStateError, NotFoundError, UsageError
from quayside.loadtesting import report as loadtest_report
from quayside.registry import loadtests
from quayside.registry.policy import PolicyChange
from quayside.registry.store import RegistryStore
from tests.registry.conftest import unique
from tests.registry.reports import HTML, SLO, add_report, report_document


@pytest.fixture
def store(local_sqlite) -> RegistryStore:
    return RegistryStore.from_settings(local_sqlite.settings)


def registered(store: RegistryStore, packages: list[Path], count: int = 1) -> str:
    name = unique()
    for number in range(count):
        store.register_version(name, packages[number % len(packages)], actor="tester")
    return name


def report_folders(store: RegistryStore, name: str) -> list[Path]:
    root = store.artifacts.root / loadtests.LOADTESTS_DIR / name
    return sorted(p for p in root.glob("*/*") if p.is_dir())


def test_a_report_is_written_whole_under_the_artifact_root_and_read_back(store, packages):
    name = registered(store, packages)
    digest = store.get_version(name, 1).digest
    document = report_document(digest, p95_ms=5.0)
    document["verdict"] = {"passed": False, "objectives": []}

    record = store.add_loadtest_report(name, 1, document, HTML, actor="alice")

    assert record.id != "from-the-client" and loadtests.REPORT_ID_PATTERN.fullmatch(record.id)
    assert (record.model, record.version, record.package_digest, record.uploaded_by) == (
        name,
        1,
        digest,
        "alice",
    )
    assert (record.users, record.duration_s, dict(record.tested)) == (
        8,
        30.0,
        {"kind": "package", "package_digest": digest},
    )
    (folder,) = report_folders(store, name)
    assert folder == store.artifacts.root / "loadtests" / name / "1" / record.id
    listed = [info.key for info in store.artifacts.list(f"loadtests/{name}/1/{record.id}")]
    assert listed == [f"loadtests/{name}/1/{record.id}/{file}" for file in ("report.html", "report.json")]
    kept = json.loads((folder / loadtests.REPORT_JSON).read_text())
    assert "verdict" not in kept  # the client's verdict is not kept: the registry judges the figures
    assert (kept["id"], kept["model"], kept["version"]) == (record.id, name, 1)
    assert (folder / loadtests.REPORT_HTML).read_text() == HTML
    assert store.loadtest_report_page(name, 1, record.id) == HTML

    full = store.loadtest_report(name, 1, record.id)
    assert full["timeseries"] == document["timeseries"] and full["summary"]["p95_ms"] == 5.0
    assert full["record"]["id"] == record.id and full["verdict"] is None  # no SLO in the policy yet
    assert not list((store.artifacts.root / scratch.SCRATCH_DIR).glob("*"))  # no scratch left behind


def test_the_derived_figures_are_computed_from_the_raw_counts_not_taken_from_the_client(store, packages):
    name = registered(store, packages)
    document = report_document(store.get_version(name, 1).digest, requests=2000, failures=10, duration_s=20.0)
    document["summary"] |= {"error_rate": 0.0, "rps": 1e9}

    record = store.add_loadtest_report(name, 1, document, HTML, actor="tester")

    assert record.summary["error_rate"] == 0.005 and record.summary["rps"] == 100.0


def test_reports_are_listed_newest_first_each_judged_against_the_policy_in_force(store, packages):
    name = registered(store, packages)
    digest = store.get_version(name, 1).digest
    now = time.time()
    failing = store.add_loadtest_report(
        name, 1, report_document(digest, started_at=now - 200, p95_ms=90.0), HTML, actor="tester"
    )
    passing = store.add_loadtest_report(
        name, 1, report_document(digest, started_at=now - 100), HTML, actor="tester"
    )

    unjudged = store.loadtest_reports(name, 1)
    assert [(r.id, r.passed) for r in unjudged] == [(passing.id, None), (failing.id, None)]
    assert "the policy has no SLO to judge it against" in unjudged[0].judgement.problems

    store.set_policy(name, PolicyChange(slo=SLO), actor="tester")
    listed = store.loadtest_reports(name, 1)
    assert [(r.id, r.passed, r.judgement.qualifies) for r in listed] == [
        (passing.id, True, True),
        (failing.id, False, False),
    ]
    assert listed[1].judgement.problems == ("missed p95_ms<=25 (measured 90)",)
    assert store.loadtest_record(name, 1, failing.id).to_dict()["problems"] == [
        "missed p95_ms<=25 (measured 90)"
    ]
    assert store.loadtest_report(name, 1, passing.id)["verdict"]["passed"] is True


def test_reports_belong_to_their_version(store, packages):
    name = registered(store, packages, 2)
    first = store.add_loadtest_report(
        name, 1, report_document(store.get_version(name, 1).digest), HTML, actor="tester"
    )
    assert store.loadtest_reports(name, 2) == []
    with pytest.raises(NotFoundError, match=f"model '{name}' version 2 has no load-test report '{first.id}'"):
        store.loadtest_report(name, 2, first.id)
    with pytest.raises(NotFoundError, match="no load-test report 'zzz'"):
        store.loadtest_report(name, 1, "zzz")
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 7"):
        store.loadtest_reports(name, 7)


@pytest.mark.parametrize("report_id", ["../../registry", "a/b", "..", "", "x" * 65, "a b", "%2e%2e"])
def test_a_report_id_that_could_escape_the_registry_is_refused(store, packages, report_id):
    name = registered(store, packages)
    for read in (store.loadtest_report, store.loadtest_record, store.loadtest_report_page):
        with pytest.raises(UsageError, match=r"report id .* is invalid"):
            read(name, 1, report_id)
    with pytest.raises(UsageError, match=r"report id .* is invalid"):
        store.reports.storage_path(name, 1, report_id)


def test_a_stored_path_outside_the_loadtests_folder_is_refused(store):
    for path in ("packages/iris/1", "/etc", "loadtests/../packages/x"):
        with pytest.raises(Exception, match="is not inside the registry"):
            store.reports.check_storage_path(path)


def _without(document: dict[str, Any], dotted: str) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    target = document
    for key in parents:
        target = target[key]
    del target[leaf]
    return document


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("tested", "'tested'"),
        ("tested.kind", "'tested.kind'"),
        ("tested.package_digest", "'tested.package_digest'"),
        ("users", "'users'"),
        ("duration_s", "'duration_s'"),
        ("elapsed_s", "'elapsed_s'"),
        ("started_at", "'started_at'"),
        ("summary", "'summary'"),
        ("summary.requests", "'requests'"),
        ("summary.failures", "'failures'"),
        ("summary.p95_ms", "latency percentiles"),
        ("timeseries", "'timeseries'"),
    ],
)
def test_a_document_missing_a_field_is_a_400_naming_it_and_stores_nothing(store, packages, missing, named):
    name = registered(store, packages)
    document = _without(report_document(store.get_version(name, 1).digest), missing)

    with pytest.raises(UsageError, match=f"the load-test report .*{named}") as refused:
        store.add_loadtest_report(name, 1, document, HTML, actor="tester")

    assert refused.value.http_status == 400
    assert store.loadtest_reports(name, 1) == [] and report_folders(store, name) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"users": 0}, "field 'users' must be a whole number >= 1"),
        ({"users": 2.5}, "field 'users' must be a whole number"),
        ({"duration_s": float("nan")}, "NaN or an infinity"),
        ({"duration_s": "30"}, "has no number 'duration_s'"),
        ({"tested": {"kind": "vibes", "package_digest": "0" * 64}}, "'tested.kind' must be one of"),
        ({"tested": {"kind": "package", "package_digest": "abc"}}, "'tested.package_digest' must be"),
        (
            {"summary": {"requests": 5, "failures": 9, **{"p50_ms": 1, "p95_ms": 1, "p99_ms": 1}}},
            "9 failures in 5",
        ),
        ({"timeseries": "lots"}, "'timeseries'"),
        ({"generator": "busy"}, "field 'generator' must be an object"),
    ],
)
def test_a_document_with_a_wrong_field_is_a_400_naming_it(store, packages, change, named):
    name = registered(store, packages)
    document = report_document(store.get_version(name, 1).digest) | change
    with pytest.raises(UsageError, match=named):
        store.add_loadtest_report(name, 1, document, HTML, actor="tester")
    assert store.loadtest_reports(name, 1) == []


def test_a_document_that_is_not_an_object_or_has_no_page_is_refused(store, packages):
    name = registered(store, packages)
    with pytest.raises(UsageError, match="must be a JSON object"):
        store.add_loadtest_report(name, 1, [1, 2], HTML, actor="tester")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="has no HTML page"):
        store.add_loadtest_report(
            name, 1, report_document(store.get_version(name, 1).digest), "  ", actor="tester"
        )
    assert report_folders(store, name) == []


def test_a_report_of_a_deleted_or_unknown_version_is_refused_and_leaves_no_files(store, packages):
    name = registered(store, packages, 2)
    digest = store.get_version(name, 2).digest
    store.delete_version(name, 2, actor="tester")
    with pytest.raises(InvalidStateError, match=f"version 2 of '{name}' is deleted"):
        store.add_loadtest_report(name, 2, report_document(digest), HTML, actor="tester")
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 5"):
        store.add_loadtest_report(name, 5, report_document(digest), HTML, actor="tester")
    with pytest.raises(NotFoundError, match="no registered model named"):
        store.add_loadtest_report(unique("nope"), 1, report_document(digest), HTML, actor="tester")
    assert report_folders(store, name) == []


def test_deleting_the_model_removes_its_reports_and_their_files(store, packages):
    name = registered(store, packages)
    add_report_via_store = store.add_loadtest_report(
        name, 1, report_document(store.get_version(name, 1).digest), HTML, actor="tester"
    )
    assert report_folders(store, name)
    store.delete_model(name, actor="tester")
    assert report_folders(store, name) == []
    store.register_version(name, packages[0], actor="tester")  # a new model under the same name
    assert store.loadtest_reports(name, 1) == []
    with pytest.raises(NotFoundError):
        store.loadtest_report(name, 1, add_report_via_store.id)


def test_the_client_uploads_lists_and_reads_reports_on_every_target(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    registry.set_policy(name, slo=SLO)
    uploaded = add_report(registry, name, 1, p95_ms=7.0)

    assert uploaded.passed is True and uploaded.judgement.qualifies
    (listed,) = registry.loadtest_reports(name, 1)
    assert listed.id == uploaded.id and listed.uploaded_by == "tester" and listed.summary["p95_ms"] == 7.0
    full = registry.loadtest_report(name, 1, uploaded.id)
    assert full["record"]["qualifies"] is True and len(full["timeseries"]) == 3


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
