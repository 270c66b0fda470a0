"""The report: summary numbers from every request, a per-second series, and an HTML page that works offline."""

from __future__ import annotations

import json
import re

import pytest

from quayside.loadtesting.payloads import Payloads
from quayside.loadtesting.report import build_report, summary_for_slo, write_report
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
