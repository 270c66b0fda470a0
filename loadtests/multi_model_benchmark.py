"""One ``quayside serve`` holding 5 models against 5 single-model servers, at the same total load.

    .venv/bin/python loadtests/multi_model_benchmark.py [--duration 10] [--warmup 3] [--concurrency 20]
        [--rows 1|100] [--models 5] [--markdown]

The models are 5 ONNX RandomForests of the serving benchmark's size (100 trees,
depth 8, 20 float32 features), each trained on its own ``make_classification``
data with its own seed, so they are distinct models of the same size.

Two configurations, one after the other:

- ``one-server``: ``quayside serve rf1=P1 ... rf5=P5 --quiet --grpc-port 0``, one
  process with a runtime session and a batcher per model;
- ``five-servers``: ``quayside serve Pi --quiet --grpc-port 0`` five times, on five
  ports (gRPC off there too: five servers cannot share its default port, and REST
  is all this benchmark calls).

Every server runs with what ``quayside serve`` chooses by default (one worker, ONNX
Runtime intra-op threads = the machine's cores), so the five single-model servers
together start five times the threads the one server does, on the same cores. The
comparison is at equal total load, not per-core tuned: each configuration gets
``--concurrency`` callers in total (default 20, 4 per model), spread evenly over
the models, in closed loops, each on its own keep-alive HTTP/1.1 connection
(asyncio streams, one event loop in this process, request bytes built once up
front), posting V2 JSON of ``--rows`` rows to ``/v2/models/NAME/infer``. Each
configuration runs ``--warmup`` seconds unmeasured, then ``--duration`` measured.
Before the load, every model's answer to its first request is checked against its
scikit-learn labels, so a server that routes a name to the wrong model fails the run.

Reported per configuration: requests/s in total and per model, p50 and p99 latency,
errors, the total memory of all server processes (summed over each server's process
tree: RSS from /proc/<pid>/status, and PSS from /proc/<pid>/smaps_rollup, which
splits pages the processes share) once ready, after the warm-up and at the end, and
the servers' and this client's CPU in the measured window (% of one core). Prints a
table, writes loadtests/multi_model.json, and with ``--markdown`` prints the rows
of the RESULTS.md table. The client shares the machine's cores with the servers;
its CPU share is reported so that a saturated client shows. On a machine shared
with other work, the scheduler hands five busy processes a larger share of the
contended cores than one, which favours the five servers: read the server CPU
column beside requests/s, and compare on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from serving_bench import machine, payloads
from serving_bench.closed_loop import Latencies, read_status
from serving_bench.memory import pss_bytes, rss_bytes
from serving_bench.models import N_FEATURES, ServedModel
from serving_bench.paths import LOADTESTS_DIR, WORK_DIR, relative
from serving_bench.processes import (
    ServerProcess,
    free_port,
    http_call,
    install_cleanup,
    process_tree,
    run_cli,
    wait_for,
)
from serving_bench.servers import quayside_command, quayside_ort_threads

RESULTS_JSON = LOADTESTS_DIR / "multi_model.json"
BENCH_DIR = WORK_DIR / "multi-model"
BODIES_PER_MODEL = 64
HELD_OUT_ROWS = 1000
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
MIB = 2**20
CONFIGURATIONS = {
    "one-server": "one quayside serve holding every model",
    "five-servers": "one quayside serve per model",
}


@dataclass(frozen=True)
class ModelFigures:
    """One model's share of a configuration's measured window."""

    name: str
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class ConfigurationResult:
    """One configuration under the run's load: throughput, latency, memory and CPU of all its servers."""

    key: str
    title: str
    server_processes: int
    models: int
    concurrency: int
    rows: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    rows_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    rss_ready_mib: float
    rss_warm_mib: float
    rss_end_mib: float
    pss_warm_mib: float
    pss_end_mib: float
    server_cpu_percent: float
    client_cpu_percent: float
    per_model: list[ModelFigures]


@dataclass(frozen=True)
class Target:
    """Where one model is called: its port and its ready-made requests (HTTP head and V2 body)."""

    model: ServedModel
    port: int
    requests: tuple[bytes, ...]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="callers in total, spread over the models"
    )
    parser.add_argument("--rows", type=int, default=1, help="rows per request (1 and 100 are the table's)")
    parser.add_argument("--models", type=int, default=5, help="how many models (and single-model servers)")
    parser.add_argument("--out", type=Path, default=RESULTS_JSON, help="the JSON written")
    parser.add_argument("--markdown", action="store_true", help="also print the RESULTS.md table rows")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be above 0 and --warmup at least 0 seconds")
    if args.models < 1:
        parser.error(f"--models must be at least 1, got {args.models}")
    if args.concurrency < args.models:
        parser.error(f"--concurrency {args.concurrency} gives some of the {args.models} models no caller")
    if not 1 <= args.rows <= HELD_OUT_ROWS:
        parser.error(f"--rows must be between 1 and {HELD_OUT_ROWS}, got {args.rows}")
    return args


def machine_details() -> dict[str, str]:
    """The serving benchmark's machine header, without its wrk version: this benchmark runs no wrk."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{machine._cpu_model()}, {os.cpu_count()} logical CPUs",
        "memory": machine._memory_gib(),
        "os": f"{machine._os_name()}, Linux {os.uname().release}",
        "python": sys.version.split()[0],
        "commit": machine._git_revision(),
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def build_forest(index: int, seed: int) -> ServedModel:
    """The serving benchmark's forest (100 trees, depth 8, 20 features), on data and trees drawn from ``seed``."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    import quayside

    features, labels = make_classification(
        n_samples=5000 + HELD_OUT_ROWS, n_features=N_FEATURES, n_informative=10, random_state=seed
    )
    features = features.astype(np.float32)
    train, held_out = features[:5000], features[5000:]
    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=seed, n_jobs=1)
    forest.fit(train, labels[:5000])
    name = f"rf{index}"
    package_dir = BENCH_DIR / f"{name}-package"
    quayside.save_model(forest, package_dir, input_example=train[:5], to_onnx=True, name=name)
    manifest = quayside.load_model(package_dir).manifest
    if manifest.onnx is None or not manifest.onnx.servable:
        raise RuntimeError(f"package {package_dir} has no servable ONNX model")
    input_name = manifest.signature.inputs.names[0]
    onnx_path = package_dir / manifest.onnx.file
    return ServedModel(
        name, package_dir, onnx_path, input_name, held_out, "label", forest.predict(held_out), True
    )


def build_forests(count: int) -> list[ServedModel]:
    """``count`` forests of the same size, seeds 0, 1, ... (rf1 is the serving benchmark's own forest)."""
    import shutil

    shutil.rmtree(BENCH_DIR, ignore_errors=True)
    BENCH_DIR.mkdir(parents=True)
    return [build_forest(index + 1, seed=index) for index in range(count)]


def v2_bodies(model: ServedModel, rows: int) -> list[bytes]:
    """Distinct V2 bodies of ``rows`` consecutive held-out rows; the first starts at row 0."""
    body = payloads.v2_body(model.input_name)
    return [text.encode() for text in payloads.bodies(model.rows, rows, BODIES_PER_MODEL, body)]


def http_request(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def serve_argv(models: list[str], port: int) -> list[str]:
    return [
        *quayside_command(), "serve", *models, "--host", "127.0.0.1", "--port", str(port),
        "--grpc-port", "0", "--quiet",
    ]  # fmt: skip


@dataclass(frozen=True)
class Deployment:
    """A configuration's running servers, each with its port, and the port that answers each model."""

    servers: list[tuple[ServerProcess, int]]
    ports: dict[str, int]

    @property
    def processes(self) -> list[ServerProcess]:
        return [server for server, _ in self.servers]


def start_servers(key: str, models: list[ServedModel]) -> Deployment:
    """The configuration's servers, started (not yet ready)."""
    log_dir = BENCH_DIR / key
    if key == "one-server":
        port = free_port()
        named = [f"{model.name}={model.package_dir}" for model in models]
        server = ServerProcess(
            serve_argv(named, port), cwd=BENCH_DIR, env=os.environ, log_path=log_dir / "server.log"
        )
        return Deployment([(server, port)], {model.name: port for model in models})
    servers, ports = [], {}
    for model in models:
        port = ports[model.name] = free_port()
        log_path = log_dir / f"{model.name}.log"
        server = ServerProcess(
            serve_argv([str(model.package_dir)], port), cwd=BENCH_DIR, env=os.environ, log_path=log_path
        )
        servers.append((server, port))
    return Deployment(servers, ports)


def wait_ready(deployment: Deployment) -> str | None:
    """None once every server answers ready, else what went wrong (with the server's log tail)."""
    for server, port in deployment.servers:
        if wait_for(server, port, "GET", "/v2/health/ready", None, timeout_s=READY_TIMEOUT_S) is None:
            return f"the server on port {port} did not become ready:\n{server.log_tail()}"
    return None


def check_answers(models: list[ServedModel], ports: dict[str, int], rows: int) -> str | None:
    """None if every model answers its first request with its own labels, else what differs."""
    for model in models:
        path = f"/v2/models/{model.name}/infer"
        answer = http_call(
            ports[model.name], "POST", path, v2_bodies(model, rows)[0], timeout_s=REQUEST_TIMEOUT_S
        )
        if answer.status != 200:
            return f"{path} answered {answer.status}: {answer.body[:300]!r}"
        problem = payloads.compare(
            json.loads(answer.body), model.output_name, model.reference[:rows], model.exact
        )
        if problem:
            return f"{path}: {problem}"
    return None


class Connection:
    """A caller's keep-alive connection, opened on first use and again after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, request: bytes) -> bool:
        """Send one ready-made request; whether it was answered 200."""
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.streams
            writer.write(request)
            return await asyncio.wait_for(read_status(reader), REQUEST_TIMEOUT_S) == 200
        except (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError):
            self.close()
            return False

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def drive(targets: list[Target], concurrency: int, recorders: list[Latencies]) -> None:
    """``concurrency`` closed-loop callers, caller i calling model i mod n, until the window ends."""
    until = recorders[0].measure_until

    async def caller(index: int) -> None:
        target, recorder = targets[index % len(targets)], recorders[index % len(targets)]
        connection = Connection(target.port)
        position = index // len(targets)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                ok = await connection.post(target.requests[position % len(target.requests)])
                recorder.record(started, time.perf_counter(), ok)
                position += 1
        finally:
            connection.close()

    await asyncio.gather(*(caller(index) for index in range(concurrency)))


@dataclass
class Snapshot:
    """CPU and memory at one moment of a run."""

    at: float
    client_cpu_s: float
    server_cpu_s: float
    rss: int
    pss: int

    @classmethod
    def take(cls, servers: list[ServerProcess]) -> Snapshot:
        pids = [server.pid for server in servers]
        return cls(
            at=time.perf_counter(),
            client_cpu_s=time.process_time(),
            server_cpu_s=sum(server.cpu_seconds() for server in servers),
            rss=rss_bytes(pids),
            pss=pss_bytes(pids),
        )


def run_load(
    targets: list[Target], servers: list[ServerProcess], args: argparse.Namespace
) -> tuple[list[Latencies], Snapshot, Snapshot]:
    """Warm up, then measure: the per-model recorders and the snapshots after warm-up and at the end."""
    start = time.perf_counter()
    recorders = [Latencies(start + args.warmup, start + args.warmup + args.duration) for _ in targets]
    warm: Snapshot | None = None

    async def main() -> None:
        nonlocal warm

        async def mark() -> None:
            nonlocal warm
            await asyncio.sleep(args.warmup)
            warm = await asyncio.to_thread(Snapshot.take, servers)

        await asyncio.gather(drive(targets, args.concurrency, recorders), mark())

    asyncio.run(main())
    end = Snapshot.take(servers)
    assert warm is not None
    return recorders, warm, end


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def summarise(
    key: str,
    servers: list[ServerProcess],
    rss_ready: int,
    measured: tuple[list[Latencies], Snapshot, Snapshot],
    models: list[ServedModel],
    args: argparse.Namespace,
) -> ConfigurationResult:
    recorders, warm, end = measured
    span = end.at - warm.at
    per_model = []
    for model, recorder in zip(models, recorders, strict=True):
        values = np.asarray(recorder.latencies_ms)
        per_model.append(
            ModelFigures(
                name=model.name,
                requests=len(values),
                errors=recorder.errors,
                requests_per_s=round(len(values) / args.duration, 1),
                p50_ms=_percentile(values, 50),
                p99_ms=_percentile(values, 99),
            )
        )
    every = np.asarray([ms for recorder in recorders for ms in recorder.latencies_ms])
    return ConfigurationResult(
        key=key,
        title=CONFIGURATIONS[key],
        server_processes=sum(len(process_tree(server.pid)) for server in servers if server.alive()),
        models=len(models),
        concurrency=args.concurrency,
        rows=args.rows,
        duration_s=args.duration,
        requests=len(every),
        errors=sum(recorder.errors for recorder in recorders),
        requests_per_s=round(len(every) / args.duration, 1),
        rows_per_s=round(len(every) * args.rows / args.duration, 1),
        p50_ms=_percentile(every, 50),
        p99_ms=_percentile(every, 99),
        rss_ready_mib=round(rss_ready / MIB, 1),
        rss_warm_mib=round(warm.rss / MIB, 1),
        rss_end_mib=round(end.rss / MIB, 1),
        pss_warm_mib=round(warm.pss / MIB, 1),
        pss_end_mib=round(end.pss / MIB, 1),
        server_cpu_percent=round(100.0 * (end.server_cpu_s - warm.server_cpu_s) / span, 1),
        client_cpu_percent=round(100.0 * (end.client_cpu_s - warm.client_cpu_s) / span, 1),
        per_model=per_model,
    )


def run_configuration(
    key: str, models: list[ServedModel], args: argparse.Namespace
) -> ConfigurationResult | str:
    """Start the configuration's servers, check and load them, stop them: its figures, or why it failed."""
    print(f"{key}: starting {CONFIGURATIONS[key]} ...", file=sys.stderr)
    deployment = start_servers(key, models)
    servers = deployment.processes
    try:
        problem = wait_ready(deployment) or check_answers(models, deployment.ports, args.rows)
        if problem:
            return problem
        rss_ready = rss_bytes([server.pid for server in servers])
        targets = [
            Target(model, deployment.ports[model.name], tuple(
                http_request(deployment.ports[model.name], f"/v2/models/{model.name}/infer", body)
                for body in v2_bodies(model, args.rows)
            ))
            for model in models
        ]  # fmt: skip
        print(f"{key}: {args.warmup:g} s warm-up, {args.duration:g} s measured ...", file=sys.stderr)
        measured = run_load(targets, servers, args)
        return summarise(key, servers, rss_ready, measured, models, args)
    finally:
        for server in servers:
            server.stop()


def compare_configurations(results: list[ConfigurationResult]) -> dict[str, float | None]:
    """Five servers' figures over the one server's: above 1 means the five servers have more of it."""
    one, five = results

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(b / a, 3) if a and b is not None else None

    return {
        "requests_per_s": ratio(one.requests_per_s, five.requests_per_s),
        "p99_ms": ratio(one.p99_ms, five.p99_ms),
        "rss_end": ratio(one.rss_end_mib, five.rss_end_mib),
        "pss_end": ratio(one.pss_end_mib, five.pss_end_mib),
        "server_cpu": ratio(one.server_cpu_percent, five.server_cpu_percent),
    }


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _per_model_range(result: ConfigurationResult) -> str:
    rates = [figures.requests_per_s for figures in result.per_model]
    return f"{min(rates):,.0f}–{max(rates):,.0f}"


def print_table(results: list[ConfigurationResult], ratios: dict[str, float | None]) -> None:
    print(f"\n{'configuration':<14}{'procs':>6}{'rows':>5}{'callers':>8}{'req/s':>10}{'per model':>13}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'errors':>7}{'RSS ready':>11}{'RSS warm':>10}{'RSS end':>9}{'PSS end':>9}"
          f"{'srv cpu':>9}{'cli cpu':>9}")  # fmt: skip
    for r in results:
        print(f"{r.key:<14}{r.server_processes:>6}{r.rows:>5}{r.concurrency:>8}{r.requests_per_s:>10,.1f}"
              f"{_per_model_range(r):>13}{_ms(r.p50_ms):>8}{_ms(r.p99_ms):>8}{r.errors:>7}"
              f"{r.rss_ready_mib:>8.0f}MiB{r.rss_warm_mib:>7.0f}MiB{r.rss_end_mib:>6.0f}MiB{r.pss_end_mib:>6.0f}MiB"
              f"{r.server_cpu_percent:>8.0f}%{r.client_cpu_percent:>8.0f}%")  # fmt: skip
    print("\nper model, requests/s (p99 ms):")
    for r in results:
        cells = "  ".join(f"{m.name} {m.requests_per_s:,.0f} ({_ms(m.p99_ms)})" for m in r.per_model)
        print(f"  {r.key:<14}{cells}")
    shown = {key: f"{value:.2f}x" if value is not None else "-" for key, value in ratios.items()}
    print(f"\nfive-servers / one-server: req/s {shown['requests_per_s']}, p99 {shown['p99_ms']}, "
          f"RSS {shown['rss_end']}, PSS {shown['pss_end']}, server CPU {shown['server_cpu']}")  # fmt: skip


def print_markdown(results: list[ConfigurationResult]) -> None:
    """The RESULTS.md table: its header and one row per configuration."""
    print("\n| configuration | server processes | rows/req | callers | req/s | req/s per model | p50 ms | p99 ms "
          "| errors | total RSS after warm-up | total RSS at end | total PSS at end | server CPU |")  # fmt: skip
    print("| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        title = {
            "one-server": f"one `quayside serve` holding {r.models} models",
            "five-servers": f"{r.models} single-model `quayside serve`s",
        }[r.key]
        print(f"| {title} | {r.server_processes} | {r.rows} | {r.concurrency} | {r.requests_per_s:,.0f} "
              f"| {_per_model_range(r)} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} | {r.errors} "
              f"| {r.rss_warm_mib:,.0f} MiB | {r.rss_end_mib:,.0f} MiB | {r.pss_end_mib:,.0f} MiB "
              f"| {r.server_cpu_percent:.0f}% |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    print(f"training and saving {args.models} RandomForests ...", file=sys.stderr)
    models = build_forests(args.models)
    results = []
    for key in CONFIGURATIONS:
        outcome = run_configuration(key, models, args)
        if isinstance(outcome, str):
            print(f"error: {key}: {outcome}", file=sys.stderr)
            return 1
        results.append(outcome)
    ratios = compare_configurations(results)
    print_table(results, ratios)
    if args.markdown:
        print_markdown(results)
    document = {
        "machine": machine_details(),
        "command": " ".join(
            [".venv/bin/python", "loadtests/multi_model_benchmark.py", *(argv or sys.argv[1:])]
        ),
        "settings": {
            "models": [
                {"name": m.name, "seed": i, "onnx_bytes": m.onnx_path.stat().st_size}
                for i, m in enumerate(models)
            ],
            "model": "RandomForest (100 trees, depth 8, 20 float32 features) as ONNX, one seed per model",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "callers_per_model": args.concurrency / args.models,
            "rows_per_request": args.rows,
            "server_defaults": f"1 worker, {quayside_ort_threads(1)} ORT intra-op threads per server, --grpc-port 0",
            "client": "asyncio streams, one keep-alive HTTP/1.1 connection per caller, V2 JSON, closed loops",
            "memory": "RSS (VmRSS) and PSS (smaps_rollup) summed over every server's process tree",
            "cpu": "% of one core over the measured window",
        },
        "configurations": [asdict(result) for result in results],
        "five_servers_over_one_server": ratios,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {relative(args.out)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
