"""The serving benchmark: Quayside against (a) hand-written FastAPI, (b) BentoML, (c) MLflow.

Each server in turn: time its cold start (median of several starts), keep
the last start running, and check that every endpoint answers correctly. Then,
with all of them up, drive each endpoint with wrk at each payload size and
connection count after a warm-up, the servers taking turns at each setting.
Results go to RESULTS.md (its serving section) and to serving.json beside it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from serving_bench import envs, models, report, servers
from serving_bench.harness import (
    LiveEndpoint,
    LoadPlan,
    RunningServer,
    ServerFailed,
    gate,
    measure_cold_start,
    measure_interleaved,
)
from serving_bench.machine import machine_info
from serving_bench.paths import LOADTESTS_DIR, WORK_DIR, relative
from serving_bench.processes import install_cleanup, stop_all
from serving_bench.results import ServerResult
from serving_bench.servers import ServerOptions, ServerSpec
from serving_bench.targets import serving_targets
from serving_bench.wrk import ensure_wrk

SERVERS = ("quayside", "quayside-nobatch", "handwritten", "handwritten-tuned", "bentoml", "mlflow")
OPT_IN_SERVERS = ("quayside-token",)
"""Measured only when --only names them: ``quayside-token`` is Quayside with --auth-token-file, each
request sending the token, to put beside ``quayside`` (issue 15: within 3 %)."""
SECTION = "serving-benchmark"
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Settings:
    """The run's settings, from the command line."""

    servers: tuple[str, ...]
    plan: LoadPlan
    options: ServerOptions
    cold_start_runs: int
    quayside_args: tuple[str, ...]
    """Extra ``quayside serve`` options, for both Quayside servers (batching on and off)."""
    out_dir: Path
    command: str


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="serving_benchmark.py",
        description=(
            "Serve one RandomForest (100 trees, depth 8, 20 float32 features, converted to ONNX) with "
            "`quayside serve` and with three baselines, each from its own venv under loadtests/.venvs/: "
            "(a) a hand-written FastAPI + ONNX Runtime endpoint on uvicorn[standard], (b) BentoML on ONNX "
            "Runtime, (c) `mlflow models serve` on the scikit-learn model; also (a') the hand-written "
            "endpoint with ONNX Runtime set up as Quayside sets it (threads = cores / workers, no spinning). "
            "Quayside runs twice, with batching on (the default) and with --no-batching. "
            "Each server's cold start is timed, its answers are checked against scikit-learn's labels, and "
            "wrk drives it with 1-row and 100-row JSON requests at 1, 4, 8, 16 and 64 connections, the servers "
            "taking turns at each setting. Writes the serving section of RESULTS.md and serving.json in --out."
        ),
        epilog=(
            "Timings are only as quiet as the machine: it has 2 cores, and wrk shares them with the server. "
            "Each row records the 1-minute load average at its start. Servers run on 127.0.0.1 only and "
            "are stopped (whole process groups) on exit, failure or Ctrl-C."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="5 s runs and 2 s warm-ups (checks the harness)")
    parser.add_argument(
        "--only",
        default=",".join(SERVERS),
        help="comma-separated servers to run (default: %(default)s; also quayside-token: Quayside with "
        "--auth-token-file, each request sending the token)",
    )
    parser.add_argument("--duration", type=float, help="seconds per timed wrk run (default 15, --quick 5)")
    parser.add_argument(
        "--warmup", type=float, help="seconds of warm-up per endpoint and payload (default 5, --quick 2)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="timed runs per endpoint and setting, taking turns; the report shows the median run (default: 1)",
    )
    parser.add_argument(
        "--connections", default="1,4,8,16,64", help="wrk connection counts (default: %(default)s)"
    )
    parser.add_argument("--rows", default="1,100", help="rows per request (default: %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes for every server (default: 1)"
    )
    parser.add_argument(
        "--cold-starts", type=int, help="starts per server for the cold-start median (default 3)"
    )
    parser.add_argument(
        "--quayside-args",
        default="",
        help="extra `quayside serve` options for both Quayside servers, e.g. '--max-batch-size 128' (default: none: the defaults are what is measured)",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="leave every server's per-request access log on"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=LOADTESTS_DIR,
        help="folder for RESULTS.md and serving.json (default: loadtests/)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SERVERS + OPT_IN_SERVERS)
    if unknown:
        parser.error(
            f"--only: unknown server(s) {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(SERVERS + OPT_IN_SERVERS)}"
        )
    quick = args.quick
    plan = LoadPlan(
        duration_s=args.duration or (5.0 if quick else 15.0),
        warmup_s=args.warmup or (2.0 if quick else 5.0),
        connections=tuple(int(c) for c in args.connections.split(",")),
        rows_per_request=tuple(int(r) for r in args.rows.split(",")),
        rounds=args.rounds,
    )
    return Settings(
        servers=tuple(s for s in SERVERS + OPT_IN_SERVERS if s in args.only.split(",")),
        plan=plan,
        options=ServerOptions(workers=args.workers, access_log=args.access_log),
        cold_start_runs=args.cold_starts or 3,
        quayside_args=tuple(shlex.split(args.quayside_args)),
        out_dir=args.out,
        command=shlex.join([".venv/bin/python", "loadtests/serving_benchmark.py", *(argv or sys.argv[1:])]),
    )


def _venvs(names: tuple[str, ...]) -> dict[str, envs.Venv]:
    factories = {
        "handwritten": envs.handwritten_venv,
        "handwritten-tuned": envs.handwritten_venv,
        "bentoml": envs.bentoml_venv,
        "mlflow": envs.mlflow_venv,
    }
    return {name: envs.ensure_venv(factories[name]()) for name in names if name in factories}


def _spec(
    name: str, model: models.ServedModel, settings: Settings, venvs: dict[str, envs.Venv]
) -> ServerSpec:
    if name in ("quayside", "quayside-nobatch", "quayside-token"):
        return servers.quayside_spec(
            model,
            settings.options,
            settings.quayside_args,
            batching=name != "quayside-nobatch",
            token=name == "quayside-token",
        )
    if name in ("handwritten", "handwritten-tuned"):
        return servers.handwritten_spec(
            model, settings.options, venvs[name], tuned=name == "handwritten-tuned"
        )
    if name == "bentoml":
        return servers.bentoml_spec(model, settings.options, venvs[name])
    return servers.mlflow_spec(model, settings.options, venvs[name])


def start_and_gate(
    spec: ServerSpec, model: models.ServedModel, settings: Settings
) -> tuple[ServerResult, RunningServer | None]:
    """Time the server's cold starts and gate its endpoints; it is left running unless it failed."""
    print(f"\n== {spec.title}", flush=True)
    result = ServerResult(
        spec.key, spec.title, envs.package_versions(spec.python, spec.packages), spec.argv(0)
    )
    try:
        cold_start, server = measure_cold_start(
            spec, model, settings.cold_start_runs, WORK_DIR / "logs", READY_TIMEOUT_S
        )
    except ServerFailed as e:
        print(f"  failed: {e}", flush=True)
        result.error = str(e).splitlines()[0]
        return result, None
    result.cold_start = cold_start
    print(
        f"  cold start: ready {cold_start.ready_s} s, first prediction {cold_start.first_predict_s} s",
        flush=True,
    )
    result.endpoints = gate(spec, server, model, settings.plan.rows_per_request)
    return result, server


def _unavailable(name: str, why: str) -> ServerResult:
    return ServerResult(name, name, {}, [], error=why)


def benchmark(specs: list[ServerSpec], model: models.ServedModel, settings: Settings) -> list[ServerResult]:
    """Start and gate every server, then time them all, taking turns; always stop them."""
    results: list[ServerResult] = []
    live: list[LiveEndpoint] = []
    try:
        for spec in specs:
            result, server = start_and_gate(spec, model, settings)
            results.append(result)
            if server is None:
                continue
            for endpoint, endpoint_result in zip(spec.endpoints, result.endpoints, strict=True):
                if endpoint_result.gate == "passed":
                    live.append(LiveEndpoint(spec, endpoint, server, endpoint_result))
        print(f"\n== load: {len(live)} endpoint(s), taking turns", flush=True)
        measure_interleaved(live, model, settings.plan, WORK_DIR)
        for result, spec in zip(results, specs, strict=True):
            servers_of = {e.server for e in live if e.spec is spec}
            if any(not s.process.alive() for s in servers_of):
                result.error = "the server exited during the load runs; see its log in loadtests/.work/logs/"
    finally:
        for server in {e.server for e in live}:
            server.process.stop()
        stop_all()
    return results


def run(settings: Settings) -> list[ServerResult]:
    """Build the model, prepare each server and benchmark them together."""
    ensure_wrk()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    wanted = settings.servers
    skipped = []
    ours = [name for name in wanted if name.startswith("quayside")]
    if ours and not servers.quayside_serve_available():
        print("`quayside serve` is not available in this venv yet: Quayside is skipped", flush=True)
        wanted = tuple(s for s in wanted if s not in ours)
        skipped = [
            _unavailable(name, "`quayside serve --help` failed: the server is not built yet") for name in ours
        ]
    print("preparing venvs ...", flush=True)
    venvs = _venvs(wanted)
    print("training the forest and saving its packages ...", flush=True)
    mlflow_python = venvs["mlflow"].python if "mlflow" in venvs else None
    model = models.build_random_forest(WORK_DIR, mlflow_python)
    ort = [
        models.time_onnx_runtime(model, rows, threads)
        for rows in settings.plan.rows_per_request
        for threads in (1, 0)
    ]
    for t in ort:
        threads = t.intra_op_threads or "default"
        print(
            f"  ONNX Runtime alone, {t.rows} row(s), intra-op threads {threads}: {t.median_us} µs", flush=True
        )
    threads = servers.quayside_ort_threads(settings.options.workers)
    merge = models.time_merge_against_side_by_side(model, max(settings.plan.rows_per_request), threads)
    print(
        f"  two {merge.rows}-row requests, {merge.intra_op_threads} intra-op thread(s): merged "
        f"{merge.merged_us} µs, side by side {merge.side_by_side_us} µs, one after the other "
        f"{merge.one_after_the_other_us} µs",
        flush=True,
    )
    results = benchmark([_spec(name, model, settings, venvs) for name in wanted], model, settings)
    _write(settings, skipped + results, ort, merge)
    return skipped + results


def _write(
    settings: Settings,
    results: list[ServerResult],
    ort: list[models.OrtTiming],
    merge: models.MergeTiming,
) -> None:
    from serving_bench.render import render_serving

    machine = machine_info()
    targets = serving_targets(results, settings.plan.connections, settings.plan.rows_per_request)
    json_path = settings.out_dir / "serving.json"
    data = {
        "machine": machine,
        "command": settings.command,
        "settings": settings,
        "onnx_runtime_alone": ort,
        "merged_against_side_by_side": merge,
        "servers": results,
        "targets": targets,
    }
    report.write_json(json_path, data)
    markdown = render_serving(machine, settings, results, targets, ort, merge, relative(json_path))
    md_path = settings.out_dir / "RESULTS.md"
    report.replace_section(md_path, SECTION, markdown)
    print(f"\nwrote {relative(md_path)} and {relative(json_path)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    install_cleanup()
    started = time.perf_counter()
    results = run(settings)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    ran = [r for r in results if r.command]
    failed = [r.key for r in ran if r.error or any(e.gate != "passed" for e in r.endpoints)]
    if failed:
        print(f"not measured in full: {', '.join(failed)} (see RESULTS.md)", flush=True)
    return 1 if failed else 0
