"""The load-test report: a JSON document, and a self-contained HTML page with its charts drawn inline.

:func:`build_report` summarises a :class:`~quayside.loadtesting.runner.LoadResult`
(requests, failures, RPS, latency percentiles, errors by type, a per-second time
series); :func:`render_html` draws it as inline SVG with the data embedded, so the
page opens offline and links to nothing.
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
"""Above this share of one core, the load generator itself was the bottleneck."""


def generator_figures(result: LoadResult) -> dict[str, Any]:
    """How busy the load generator was: its CPU seconds, as a share of one core, and whether that saturated it."""
    percent = 100.0 * result.generator_cpu_s / result.elapsed_s if result.elapsed_s > 0 else 0.0
    return {
        "processes": 1,
        "cpu_s": round(result.generator_cpu_s, 3),
        "cpu_percent": round(percent, 1),
        "saturated": percent >= SATURATED_CPU_PERCENT,
        "cores": os.cpu_count(),
    }


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
    return {**report, "verdict": verdict.to_dict()}


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
    return f'<p class="{outcome}">SLO {outcome}.</p><table>{head}{rows}</table>'


def _generator_line(generator: Mapping[str, Any] | None) -> str:
    if not generator:
        return ""
    line = f"Load generator: {_number(generator.get('cpu_percent'))}% of one core"
    if generator.get("saturated"):
        return f'<p class="fail">{line}: saturated, so these figures bound the generator, not only the server.</p>'
    return f"<p>{line}.</p>"


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
        f"{_generator_line(report.get('generator'))}"
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
