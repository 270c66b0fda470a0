"""The load-test report: a JSON document, and a self-contained HTML page with its charts drawn inline.

:func:`build_report` summarises a :class:`~quayside.loadtesting.runner.LoadResult`
(requests, failures, RPS, latency percentiles, errors by type, a per-second time
series); :func:`render_html` draws it as inline SVG with the data embedded, so the
page opens offline and links to nothing.

``generator`` records the load generator's CPU over the run: ``processes``, ``workers``,
``cpu_s`` (all processes), ``cpu_percent`` (the busiest process's share of one core),
``saturated`` (any process over 90% of a core), ``cores``, ``by_process`` (each process's
role — ``local``, ``master`` or ``worker`` — pid and CPU, and for a worker the requests and
failures Locust's own worker reports counted) and, when saturated, ``note``; a verdict on
such a run carries the same text as ``caveat``. Readers treat ``workers``, ``by_process``,
``note`` and ``caveat`` as optional: reports stored before them have none.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quayside.loadtesting.runner import LoadResult
from quayside.slo import Verdict

PERCENTILES = {"p50_ms": 50, "p90_ms": 90, "p95_ms": 95, "p99_ms": 99}
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def new_report_id() -> str:
    return uuid.uuid4().hex[:16]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    if not latencies_ms:
        return {key: None for key in (*PERCENTILES, "max_ms", "mean_ms")}
    values = np.asarray(latencies_ms, dtype=np.float64)
    summary: dict[str, float | None] = {
        key: round(float(np.percentile(values, q)), 3) for key, q in PERCENTILES.items()
    }
    summary["max_ms"] = round(float(values.max()), 3)
    summary["mean_ms"] = round(float(values.mean()), 3)
    return summary


def _series(result: LoadResult) -> list[dict[str, Any]]:
    points, previous = [], 0.0
    for tick in result.ticks:
        span = max(tick.t - previous, 1e-9)
        latency = latency_summary(tick.latencies_ms)
        points.append(
            {
                "t": tick.t,
                "users": tick.users,
                "requests": len(tick.latencies_ms),
                "failures": tick.failures,
                "rps": round(len(tick.latencies_ms) / span, 3),
                "p50_ms": latency["p50_ms"],
                "p95_ms": latency["p95_ms"],
                "p99_ms": latency["p99_ms"],
            }
        )
        previous = tick.t
    return points


SATURATED_CPU_PERCENT = 90.0
"""Over this share of one core, a load-generating process was itself the bottleneck (a Python
Locust process runs its users on one core)."""


def cpu_percent(cpu_s: float, wall_s: float) -> float:
    """CPU seconds over wall seconds, as a percentage of one core."""
    return 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0


def is_saturated(percent: float) -> bool:
    """Whether a generator process at ``percent`` of one core was saturated."""
    return percent > SATURATED_CPU_PERCENT


def _process(role: str, cpu_s: float, wall_s: float, **more: Any) -> dict[str, Any]:
    percent = cpu_percent(cpu_s, wall_s)
    return {
        "role": role,
        **more,
        "cpu_s": round(cpu_s, 3),
        "cpu_percent": round(percent, 1),
        "saturated": is_saturated(percent),
    }


def _process_name(process: Mapping[str, Any]) -> str:
    if process.get("role") == "worker":
        return f"worker {process.get('index')}"
    return str(process.get("role"))


def saturation_note(generator: Mapping[str, Any] | None) -> str | None:
    """What a saturated generator means for the figures, or None when no generator process was saturated.

    Reads the report's ``generator`` field, including one stored before processes were listed.
    """
    if not generator or not generator.get("saturated"):
        return None
    processes = generator.get("by_process") or []
    busy = [p for p in processes if p.get("saturated")]
    which = (
        ", ".join(f"{_process_name(p)} at {p['cpu_percent']:g}% of a core" for p in busy)
        if busy
        else f"at {generator.get('cpu_percent')}% of a core"
    )
    more = "more --workers" if processes else "Locust's distributed mode (--workers N)"
    return (
        f"the load generator was saturated ({which}): the latency it measured may be the generator's, "
        f"not only the server's; rerun with {more}"
    )


def generator_figures(result: LoadResult) -> dict[str, Any]:
    """How busy the load generator was: each process's CPU seconds and share of one core, and whether any saturated.

    ``cpu_s`` is the total over all processes; ``cpu_percent`` is the busiest process's share of
    one core (a single process's own, as reports of single-process runs have always said).
    """
    role = "master" if result.workers else "local"
    processes = [_process(role, result.generator_cpu_s, result.elapsed_s, pid=os.getpid())]
    processes += [
        _process(
            "worker",
            worker.cpu_s,
            worker.wall_s,
            index=worker.index,
            pid=worker.pid,
            requests=worker.requests,
            failures=worker.failures,
        )
        for worker in result.workers
    ]
    figures: dict[str, Any] = {
        "processes": len(processes),
        "workers": len(result.workers),
        "cpu_s": round(result.generator_cpu_s + sum(w.cpu_s for w in result.workers), 3),
        "cpu_percent": max(p["cpu_percent"] for p in processes),
        "saturated": any(p["saturated"] for p in processes),
        "cores": os.cpu_count(),
        "by_process": processes,
    }
    note = saturation_note(figures)
    if note is not None:
        figures["note"] = note
    return figures


def generator_line(report: Mapping[str, Any]) -> str | None:
    """The load generator's processes and their CPU in one line (None for a report without them)."""
    generator = report.get("generator")
    if not generator:
        return None
    processes = generator.get("by_process") or []
    if len(processes) <= 1:
        return f"load generator: 1 process at {generator.get('cpu_percent')}% of a core"
    shares = ", ".join(f"{_process_name(p)} {p['cpu_percent']:g}%" for p in processes)
    return (
        f"load generator: Locust master and {generator.get('workers')} workers, CPU of a core each: {shares}"
    )


def build_report(
    result: LoadResult,
    *,
    model: str,
    report_id: str | None = None,
    verdict: Verdict | None = None,
    tested: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready document; ``summary`` holds what SLOs are judged on.

    ``tested`` says what was load-tested (``{"kind": "package", "package_digest": ...}``, or an
    image's reference and id): the registry binds a report to a version by it.
    """
    requests = len(result.latencies_ms)
    summary: dict[str, Any] = {
        "requests": requests,
        "failures": result.failures,
        "error_rate": round(result.failures / requests, 6) if requests else 1.0,
        "rps": round(requests / result.elapsed_s, 3) if result.elapsed_s > 0 else 0.0,
        **latency_summary(result.latencies_ms),
    }
    return {
        "id": report_id or new_report_id(),
        "model": model,
        "target": result.target,
        "protocol": result.payloads.protocol,
        "path": result.payloads.path,
        "rows_per_request": result.payloads.rows,
        "users": result.options.users,
        "spawn_rate": result.options.spawn_rate,
        "duration_s": result.options.duration_s,
        "elapsed_s": round(result.elapsed_s, 3),
        "started_at": result.started_at,
        "summary": summary,
        "errors": [
            {"type": kind, "count": count}
            for kind, count in sorted(result.errors.items(), key=lambda item: -item[1])
        ],
        "timeseries": _series(result),
        "generator": generator_figures(result),
        "tested": dict(tested) if tested is not None else None,
        "verdict": verdict.to_dict() if verdict is not None else None,
    }


def with_verdict(report: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """The report with the verdict; a run whose generator was saturated says so in the verdict too."""
    judged = verdict.to_dict()
    note = saturation_note(report.get("generator"))
    if note is not None:
        judged["caveat"] = note
    return {**report, "verdict": judged}


def summary_for_slo(report: Mapping[str, Any]) -> dict[str, float]:
    """The report's summary as numbers an SLO can be judged on (a missing latency counts as NaN)."""
    return {key: float("nan") if value is None else float(value) for key, value in report["summary"].items()}


# --- HTML ----------------------------------------------------------------------------

WIDTH, HEIGHT, PAD = 720, 240, 48
COLOURS = {"p50_ms": "#2b8a3e", "p95_ms": "#e67700", "p99_ms": "#c92a2a", "rps": "#1971c2"}


def _polyline(points: Sequence[tuple[float, float]], x_max: float, y_max: float, colour: str) -> str:
    if not points:
        return ""
    coords = " ".join(
        f"{PAD + (x / x_max) * (WIDTH - 2 * PAD):.1f},{HEIGHT - PAD - (y / y_max) * (HEIGHT - 2 * PAD):.1f}"
        for x, y in points
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'


def _chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]], unit: str) -> str:
    """One line chart as inline SVG: axes, a few gridlines, one polyline per series, a legend."""
    all_points = [p for points in series.values() for p in points]
    x_max = max((x for x, _ in all_points), default=1.0) or 1.0
    y_max = max((y for _, y in all_points), default=1.0) * 1.1 or 1.0
    grid = []
    for step in range(5):
        value = y_max * step / 4
        y = HEIGHT - PAD - (value / y_max) * (HEIGHT - 2 * PAD)
        grid.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{PAD - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value:.4g}</text>'
        )
    lines = [_polyline(points, x_max, y_max, COLOURS.get(name, "#333")) for name, points in series.items()]
    legend = " ".join(f'<tspan fill="{COLOURS.get(name, "#333")}">■ {_text(name)}</tspan>' for name in series)
    return (
        f"<figure><figcaption>{_text(title)}</figcaption>"
        f'<svg role="img" aria-label="{_text(title)}" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f"{''.join(grid)}"
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle" font-size="11">seconds</text>'
        f'<text x="12" y="{PAD - 20}" font-size="11">{_text(unit)}</text>'
        f'<text x="{WIDTH - PAD}" y="{PAD - 20}" text-anchor="end" font-size="12">{legend}</text>'
        f"{''.join(lines)}</svg></figure>"
    )


def _points(series: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(float(p["t"]), float(p[key])) for p in series if p.get(key) is not None]


def _text(value: Any) -> str:
    """Any value as HTML text or a quoted attribute's value: shown as written, never read as markup."""
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    return _text(f"{value:g}" if isinstance(value, float) else value)


def _json_in_script(document: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: no ``<``, ``>`` or ``&`` can end or bend it."""
    text = json.dumps(document, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _rows(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in pairs)


def _verdict_table(verdict: Mapping[str, Any] | None) -> str:
    if not verdict:
        return "<p>No SLO was given.</p>"
    rows = "".join(
        f'<tr class="{"pass" if o["passed"] else "fail"}"><td>{_text(o["objective"])}</td>'
        f"<td>{_text(o['measured'])}</td><td>{_text(o['comparison'])} {_number(o['required'])}</td>"
        f"<td>{'pass' if o['passed'] else 'FAIL'}</td></tr>"
        for o in verdict["objectives"]
    )
    head = "<tr><th>objective</th><th>measured</th><th>required</th><th></th></tr>"
    outcome = "passed" if verdict["passed"] else "failed"
    caveat = f'<p class="fail caveat">{_text(verdict["caveat"])}</p>' if verdict.get("caveat") else ""
    return f'<p class="{outcome}">SLO {outcome}.</p>{caveat}<table>{head}{rows}</table>'


def _generator_section(generator: Mapping[str, Any] | None) -> str:
    if not generator:
        return ""
    processes = generator.get("by_process") or []
    line = f"Load generator: {_number(generator.get('cpu_percent'))}% of one core"
    if processes and len(processes) > 1:
        line = f"Load generator: Locust's master and {_number(generator.get('workers'))} workers"
    note = saturation_note(generator)
    summary = (
        f'<p class="fail saturated">{_text(line)}: {_text(note)}.</p>' if note else f"<p>{_text(line)}.</p>"
    )
    if len(processes) <= 1:
        return summary
    rows = "".join(
        f'<tr class="{"fail" if p.get("saturated") else "pass"}"><td>{_text(_process_name(p))}</td>'
        f"<td>{_number(p.get('requests', '-'))}</td><td>{_number(p.get('cpu_s'))}</td>"
        f"<td>{_number(p.get('cpu_percent'))}</td><td>{'saturated' if p.get('saturated') else 'ok'}</td></tr>"
        for p in processes
    )
    head = "<tr><th>process</th><th>requests</th><th>CPU s</th><th>% of a core</th><th></th></tr>"
    return f"{summary}<table>{head}{rows}</table>"


CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""The page runs no script and loads nothing: whatever a report holds, opening it executes nothing."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
.pass td:last-child, p.passed { color: #2b8a3e; } .fail td:last-child, p.failed { color: #c92a2a; }
figure { margin: 1em 0; } figcaption { font-weight: bold; }
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page: summary, verdict, errors and two charts; no external resources."""
    summary, series = report["summary"], report["timeseries"]
    latency = _chart(
        "Latency over time", {k: _points(series, k) for k in ("p50_ms", "p95_ms", "p99_ms")}, "ms"
    )
    throughput = _chart("Throughput over time", {"rps": _points(series, "rps")}, "requests/s")
    errors = _rows([(e["type"], e["count"]) for e in report["errors"]]) or "<tr><td>none</td></tr>"
    title = _text(f"Load test of {report['model']} — {report['id']}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p>{_text(report['target'])} ({_text(report['protocol'])}, "
        f"{_number(report['rows_per_request'])} row(s) per request), {_number(report['users'])} users "
        f"for {_number(report['duration_s'])} s</p>"
        f"{_generator_section(report.get('generator'))}"
        f"<h2>Summary</h2><table>{_rows(list(summary.items()))}</table>"
        f"<h2>Verdict</h2>{_verdict_table(report.get('verdict'))}"
        f"<h2>Charts</h2>{latency}{throughput}"
        f"<h2>Errors by type</h2><table>{errors}</table>"
        f'<script type="application/json" id="report-data">{_json_in_script(report)}</script>'
        "</body></html>\n"
    )


def write_report(report: Mapping[str, Any], directory: Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.html`` in ``directory`` (created); returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / REPORT_JSON, directory / REPORT_HTML
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    html_path.write_text(render_html(report))
    return json_path, html_path
