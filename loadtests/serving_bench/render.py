"""The serving benchmark's section of RESULTS.md, rendered from one run's results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from serving_bench.models import MergeTiming, OrtTiming
from serving_bench.report import count, ms, ratio, table
from serving_bench.results import Measurement, ServerResult
from serving_bench.targets import Target

if TYPE_CHECKING:
    from serving_bench.serving import Settings

_HOW_SERVED_INTRO = "How each server runs (all on 127.0.0.1, same worker count, access logs off, ONNX Runtime at its own default threads):"
_HOW_EACH_IS_SERVED = {
    "quayside": (
        '- **Quayside**: `quayside serve <package> --workers N --quiet` with its defaults (batching on), and the same with `--no-batching`; V2 `POST /v2/models/rf/infer` (FP32 tensor, flat data) and MLflow-style `POST /invocations` (`{"inputs": [[...]]}`) measured separately; ready = `GET /v2/health/ready`. With `--only ...,quayside-token`, also the same server with `--auth-token-file`, each request sending `Authorization: Bearer <token>` (wrk `--header`).'
    ),
    "handwritten": (
        '- **(a) hand-written**: `loadtests/baselines/handwritten_app.py` (pydantic body, `async def`, `sess.run` on the loop, every output returned) on `uvicorn[standard]` (uvloop + httptools), `{"rows": [[...]]}`; ready = first successful predict. FastAPI, uvicorn, ONNX Runtime and NumPy pinned to the Quayside venv\'s versions.'
    ),
    "handwritten-tuned": (
        "- **(a′) hand-written, tuned**: the same app with its ONNX Runtime session set up as Quayside sets it (threads = cores / workers, no spinning), to tell what ORT settings buy from what the request path buys. Not one of the issue's targets."
    ),
    "bentoml": (
        '- **(b) BentoML**: `loadtests/baselines/bentoml_service.py` (`@bentoml.service`, `np.ndarray` input, ONNX Runtime session per worker) under `bentoml serve`, `{"rows": [[...]]}`; ready = `GET /readyz`.'
    ),
    "mlflow": (
        '- **(c) MLflow**: `mlflow models serve --env-manager local` on the scikit-learn model saved with `mlflow.sklearn.save_model` (with a signature), `{"inputs": [[...]]}`; ready = `GET /ping`.'
    ),
}
_HOW_MEASURED = """\
Every endpoint first passes a correctness gate (HTTP 200 and scikit-learn's labels for 1 and 100 held-out rows) or is not timed.
wrk cycles through 32 distinct prepared bodies per payload size; latency percentiles come from wrk's own histogram (`done()` hook).
All servers stay up and take turns at each setting (payload × connections), each round starting one server further along, so that the machine's background load (2 shared cores; other people's test runs) falls on all of them alike; the "load avg" column is the 1-minute load average when the run started.
"Server CPU" is the CPU time of the server's processes during the run divided by the requests served: the per-request cost, steadier than req/s on a shared machine.
"""


def _how_served(results: list[ServerResult]) -> str:
    """How each server in this run was started, then how all were measured."""
    ran = {"quayside" if r.key.startswith("quayside") else r.key for r in results if r.command}
    lines = [_HOW_SERVED_INTRO, *(line for key, line in _HOW_EACH_IS_SERVED.items() if key in ran)]
    return "\n".join(lines) + "\n\n" + _HOW_MEASURED


_LOAD_HEADERS = (
    "server", "endpoint", "rows/req", "conns", "req/s", "rows/s", "p50 ms", "p90 ms", "p99 ms", "errors",
    "server CPU µs/req", "load avg", "req/s of each round",
)  # fmt: skip


def _load_rows(results: list[ServerResult]) -> list[list[str]]:
    rows = []
    for server in results:
        for endpoint in server.endpoints:
            if endpoint.gate != "passed":
                rows.append([server.title, endpoint.path, "", "", f"gate failed: {endpoint.gate}", *[""] * 8])
                continue
            for rows_per_request, connections in endpoint.settings():
                m = endpoint.find(rows_per_request, connections)
                assert m is not None
                load = m.load
                rows.append([
                    server.title, endpoint.path, str(m.rows_per_request), str(load.connections),
                    count(load.requests_per_s), count(m.rows_per_s), ms(load.p50_ms), ms(load.p90_ms),
                    ms(load.p99_ms), str(load.errors), f"{m.server_cpu_us_per_request:.0f}", f"{m.load_average_1m:.2f}",
                    _spread(endpoint.runs(rows_per_request, connections)),
                ])  # fmt: skip
    return rows


def _spread(runs: list[Measurement]) -> str:
    if len(runs) < 2:
        return "-"
    return ", ".join(count(m.load.requests_per_s) for m in sorted(runs, key=lambda m: m.round_number))


def _cold_rows(results: list[ServerResult]) -> list[list[str]]:
    rows = []
    for server in results:
        cold = server.cold_start
        if cold is None:
            continue
        rows.append([
            server.title, f"{cold.median_ready_s:.2f}", ", ".join(f"{v:.2f}" for v in cold.ready_s),
            f"{cold.median_first_predict_s:.2f}",
        ])  # fmt: skip
    return rows


def _target_rows(targets: list[Target]) -> list[list[str]]:
    def measured(t: Target) -> str:
        if t.measured is None:
            return "not measured"
        return f"{t.measured:.2f} s" if t.unit == " s" else ratio(t.measured)

    marks = {True: "yes", False: "**no**", None: "-"}
    return [[t.name, measured(t), t.goal, marks[t.met]] for t in targets]


def _matrix(results: list[ServerResult], payload_rows: tuple[int, ...], connections: tuple[int, ...]) -> str:
    """One row per server endpoint, one column per (rows × connections) cell: ``req/s / p99``."""
    cells = [(rows, c) for rows in payload_rows for c in connections]
    rows_out = []
    for server in results:
        for endpoint in server.endpoints:
            if endpoint.gate != "passed":
                continue
            row = [f"{server.title} {endpoint.path}"]
            for rows, c in cells:
                m = endpoint.find(rows, c)
                row.append(f"{count(m.load.requests_per_s)} / {ms(m.load.p99_ms)}" if m else "-")
            rows_out.append(row)
    headers = ["server", *(f"{rows}×{c}" for rows, c in cells)]
    return table(headers, rows_out)


def _merge_line(t: MergeTiming) -> str:
    return (
        f"Two {t.rows}-row requests on ONNX Runtime with Quayside's settings ({t.intra_op_threads} intra-op "
        f"threads, no spinning; fastest of 200): one merged call {t.merged_us:.0f} µs, two calls side by side "
        f"in two threads {t.side_by_side_us:.0f} µs, one after the other {t.one_after_the_other_us:.0f} µs."
    )


def _ort_line(ort: list[OrtTiming]) -> str:
    parts = [
        f"{t.rows} row{'s' if t.rows > 1 else ''}, {t.intra_op_threads or 'default'} intra-op thread(s): {t.median_us:.0f} µs"
        for t in ort
    ]
    return "ONNX Runtime alone (`session.run`, median of 200 calls): " + "; ".join(parts) + "."


def render_serving(
    machine: dict[str, str],
    settings: Settings,
    results: list[ServerResult],
    targets: list[Target],
    ort: list[OrtTiming],
    merge: MergeTiming,
    json_path: str,
) -> str:
    plan = settings.plan
    lines = [
        "## Serving benchmark: RandomForest (100 trees, depth 8, 20 float32 features) on ONNX Runtime",
        "",
        f"Run {machine['date']} on {machine['cpu']}, {machine['memory']}, {machine['os']}; Python {machine['python']}, "
        f"{machine['wrk']}; commit {machine['commit']}; load average at the end {machine['load_average']}.",
        "",
        f"Command: `{settings.command}` — {plan.duration_s:g} s per timed run after a {plan.warmup_s:g} s warm-up per "
        f"endpoint and payload, {plan.rounds} round(s) per setting (the table shows each cell's median-throughput "
        f"run), wrk threads = min(connections, 2), {settings.options.workers} worker(s) per server. "
        f"Raw results: `{json_path}`.",
        "",
        _ort_line(ort),
        "",
        _merge_line(merge),
        "",
        "### Throughput and latency",
        "",
        table(_LOAD_HEADERS, _load_rows(results), align="llrrrrrrrrrrr"),
        "",
        f"### Cold start (process start → ready, {settings.cold_start_runs} starts)",
        "",
        table(
            ["server", "ready s (median)", "each start s", "first prediction s (median)"], _cold_rows(results)
        ),
        "",
        "### The matrix: req/s / p99 ms (issue 21)",
        "",
        _matrix(results, plan.rows_per_request, plan.connections),
        "",
        "### Targets (issues 5 and 21)",
        "",
        table(["target", "measured", "goal", "met"], _target_rows(targets), align="lrrl"),
    ]
    not_measured = [f"- {r.title}: {r.error}" for r in results if r.error]
    if not_measured:
        lines += ["", "### Not measured", "", *not_measured]
    lines += ["", "### Versions", "", table(["server", "packages"], _version_rows(results), align="ll")]
    lines += ["", "### How it was measured", "", _how_served(results)]
    return "\n".join(lines)


def _version_rows(results: list[ServerResult]) -> list[list[str]]:
    return [
        [r.title, ", ".join(f"{name} {v}" for name, v in r.versions.items() if v != "-")]
        for r in results
        if r.versions
    ]
