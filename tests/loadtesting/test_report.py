"""The report: summary numbers from every request, a per-second series, and an HTML page that works offline."""

from __future__ import annotations

import json
import re

import pytest

from quayside.loadtesting.payloads import Payloads
from quayside.loadtesting.report import build_report, summary_for_slo, with_verdict, write_report
from quayside.loadtesting.runner import LoadOptions, LoadResult, Tick
from quayside.slo import evaluate, parse_slo


def _result() -> LoadResult:
    ticks = (
        Tick(1.0, 4, (10.0, 12.0, 30.0), 0),
        Tick(2.0, 8, (11.0, 9.0, 50.0, 8.0), 1),
        Tick(3.0, 8, (7.0, 7.5), 0),
    )
    latencies = tuple(x for t in ticks for x in t.latencies_ms)
    payloads = Payloads("v2", "/v2/models/m/infer", "application/json", (b"{}",), 1)
    return LoadResult(
        target="http://127.0.0.1:9999",
        payloads=payloads,
        options=LoadOptions(users=8, spawn_rate=4, duration_s=3),
        started_at=1_700_000_000.0,
        elapsed_s=3.0,
        latencies_ms=latencies,
        failures=1,
        errors={"HTTP 422 signature_error": 1},
        ticks=ticks,
    )


def test_the_summary_counts_every_request_and_the_series_every_second():
    report = build_report(_result(), model="m", report_id="r1")
    summary = report["summary"]
    assert summary["requests"] == 9 and summary["failures"] == 1
    assert summary["rps"] == 3.0
    assert summary["max_ms"] == 50.0 and summary["p50_ms"] == 10.0
    assert round(summary["error_rate"], 4) == round(1 / 9, 4)
    assert report["errors"] == [{"type": "HTTP 422 signature_error", "count": 1}]
    assert [(p["t"], p["requests"], p["failures"], p["users"]) for p in report["timeseries"]] == [
        (1.0, 3, 0, 4),
        (2.0, 4, 1, 8),
        (3.0, 2, 0, 8),
    ]
    json.dumps(report)


def test_the_html_report_links_nothing_external_and_embeds_the_charts_data(tmp_path):
    report = build_report(_result(), model="m", report_id="r1")
    verdict = evaluate(parse_slo("p95_ms<=25,error_rate<=0"), summary_for_slo(report))
    report["verdict"] = verdict.to_dict()
    _, html_path = write_report(report, tmp_path)
    page = html_path.read_text()
    # Nothing fetched from anywhere: no scripts or styles by URL, no links, and the only URL is the target's (as text).
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page, flags=re.I)
    assert set(re.findall(r"https?://[^\s\"'<]+", page)) <= {"http://127.0.0.1:9999"}
    assert page.count("<svg") == 2 and page.count("<polyline") == 4  # p50/p95/p99 and rps
    embedded = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    data = json.loads(embedded.group(1).replace("<\\/", "</"))
    assert [p["rps"] for p in data["timeseries"]] == [3.0, 4.0, 2.0]
    assert [p["p95_ms"] for p in data["timeseries"]] == [p["p95_ms"] for p in report["timeseries"]]
    assert "FAIL" in page and "p95_ms&lt;=25" in page
    assert "<td>&lt;= 25</td>" in page and "<=" not in page.split("<script")[0]


@pytest.mark.parametrize(
    "body",
    [
        '{"error": "input \'x\' is missing", "code": "signature_mismatch"}',
        '{"error_code": "BAD_REQUEST", "message": "m", "code": "signature_mismatch"}',
        '{"error": {"code": "signature_mismatch", "message": "m"}}',
    ],
    ids=["v2", "invocations", "quayside"],
)
def test_a_failure_is_grouped_by_the_error_code_of_every_body_shape_the_servers_answer(body):
    from quayside.loadtesting.users import failure_type

    assert failure_type(422, body) == "HTTP 422 signature_mismatch"


def test_a_failure_without_a_readable_code_is_grouped_by_its_status_or_exception():
    from quayside.loadtesting.users import failure_type

    assert failure_type(502, "<html>bad gateway</html>") == "HTTP 502"
    assert failure_type(0, "", ConnectionResetError()) == "ConnectionResetError"


# --- the load generator's CPU: a saturated process is marked, and the verdict says what it means ----------


def _with_cpu(master_cpu_s: float, workers: tuple = ()) -> LoadResult:
    from dataclasses import replace

    return replace(_result(), generator_cpu_s=master_cpu_s, workers=workers)


def _worker(index: int, cpu_s: float, requests: int = 4):
    from quayside.loadtesting.runner import WorkerFigures

    return WorkerFigures(
        index=index, pid=1000 + index, requests=requests, failures=0, cpu_s=cpu_s, wall_s=3.0
    )


@pytest.mark.parametrize(
    ("cpu_s", "saturated"),
    [(0.3, False), (2.7, False), (2.71, True), (3.0, True)],
    ids=["10%", "90% exactly", "just over 90%", "a whole core"],
)
def test_a_single_process_over_90_percent_of_a_core_is_marked_saturated(cpu_s, saturated):
    generator = build_report(_with_cpu(cpu_s), model="m")["generator"]
    assert generator["saturated"] is saturated
    assert generator["by_process"][0]["role"] == "local"
    assert generator["cpu_percent"] == round(100 * cpu_s / 3.0, 1)
    assert ("note" in generator) is saturated


def test_one_saturated_worker_marks_the_run_and_the_verdict_names_it():
    report = build_report(_with_cpu(0.1, (_worker(1, 1.2, 5), _worker(2, 2.85, 4))), model="m")
    generator = report["generator"]
    assert (generator["processes"], generator["workers"], generator["saturated"]) == (3, 2, True)
    assert [p["saturated"] for p in generator["by_process"]] == [False, False, True]
    assert generator["cpu_percent"] == 95.0 and generator["cpu_s"] == round(0.1 + 1.2 + 2.85, 3)
    assert [p.get("requests") for p in generator["by_process"]] == [None, 5, 4]
    verdict = evaluate(parse_slo("p95_ms<=100"), summary_for_slo(report))
    judged = with_verdict(report, verdict)["verdict"]
    assert judged["passed"] is True
    assert "worker 2 at 95% of a core" in judged["caveat"]
    assert "latency it measured may be the generator's" in judged["caveat"]


def test_an_unsaturated_run_has_no_caveat():
    report = build_report(_with_cpu(0.1, (_worker(1, 1.2), _worker(2, 1.5))), model="m")
    assert report["generator"]["saturated"] is False and "note" not in report["generator"]
    verdict = evaluate(parse_slo("p95_ms<=100"), summary_for_slo(report))
    assert "caveat" not in with_verdict(report, verdict)["verdict"]


def test_the_html_report_marks_a_saturated_generator_and_lists_its_processes(tmp_path):
    report = build_report(_with_cpu(0.1, (_worker(1, 2.9), _worker(2, 1.0))), model="m")
    report = with_verdict(report, evaluate(parse_slo("p95_ms<=100"), summary_for_slo(report)))
    page = write_report(report, tmp_path)[1].read_text()
    body = page.split("<script")[0]
    assert 'class="fail saturated"' in body and "worker 1 at 96.7% of a core" in body
    assert 'class="fail caveat"' in body  # in the verdict section too
    assert "<td>worker 2</td><td>4</td>" in body and "<td>saturated</td>" in body


def test_a_stored_report_from_before_processes_were_listed_still_reads_as_saturated():
    from quayside.loadtesting.report import saturation_note

    old = {"processes": 1, "cpu_s": 2.9, "cpu_percent": 96.7, "saturated": True, "cores": 2}
    assert "at 96.7% of a core" in saturation_note(old)
    assert saturation_note({**old, "saturated": False}) is None and saturation_note(None) is None


# --- the recorder: requests land in the second they finished in, however late they arrive ---------------


def test_requests_reported_late_are_binned_by_when_they_finished():
    from quayside.loadtesting.runner import Recorder

    recorder = Recorder(started_at=100.0)
    recorder.add(100.2, 5.0, None)
    first = recorder.mark(1, users=2)
    # a worker's report arrives after the second closed: its requests finished in seconds 1 and 2
    recorder.add(100.9, 6.0, "HTTP 503")
    recorder.add(101.4, 7.0, None)
    recorder.mark(2, users=4)
    recorder.add(102.01, 8.0, None)  # finished after the last mark: counted in the last second
    assert first.latencies_ms == (5.0,)
    ticks = recorder.ticks()
    assert [(t.t, t.users, t.latencies_ms, t.failures) for t in ticks] == [
        (1, 2, (5.0, 6.0), 1),
        (2, 4, (7.0, 8.0), 0),
    ]
    assert recorder.failures == 1 and recorder.errors == {"HTTP 503": 1}
    recorder.closed = True
    recorder.add(102.5, 9.0, None)
    assert len(recorder.latencies_ms) == 4


def test_more_workers_than_users_or_none_at_all_is_a_usage_error():
    from quayside.errors import UsageError

    with pytest.raises(UsageError, match="--workers 3 is more than --users 2"):
        LoadOptions(users=2, workers=3)
    with pytest.raises(UsageError, match="--workers must be at least 1"):
        LoadOptions(workers=0)


def test_payloads_travel_to_a_worker_unchanged(tmp_path):
    from quayside.loadtesting.distributed import read_payloads, write_payloads

    payloads = Payloads(
        "grpc", "/inference.GRPCInferenceService/ModelInfer", "application/grpc", (b"\x00\xff", b"ab"), 3
    )
    assert read_payloads(write_payloads(payloads, tmp_path / "payloads.json")) == payloads
