"""Start a server (timing its cold start), gate it on correct answers, and put it under wrk load."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from serving_bench import payloads
from serving_bench.models import ServedModel
from serving_bench.processes import ServerProcess, free_port, http_call, wait_for
from serving_bench.results import ColdStart, EndpointResult, Measurement
from serving_bench.servers import Endpoint, ServerSpec
from serving_bench.wrk import run_wrk, write_lua_script

GATE_ROWS = (1, 100)
BODIES_PER_PAYLOAD = 32
"""Distinct bodies per payload size that wrk cycles through."""


class ServerFailed(RuntimeError):
    """A server exited or never became ready; the message ends with its log's tail."""


@dataclass(frozen=True)
class RunningServer:
    """A started, ready server."""

    process: ServerProcess
    port: int
    ready_s: float
    first_predict_s: float


@dataclass(frozen=True)
class LoadPlan:
    """How hard and how long to drive each endpoint."""

    duration_s: float
    warmup_s: float
    connections: tuple[int, ...]
    rows_per_request: tuple[int, ...]
    rounds: int = 1
    """Timed runs per endpoint and setting; the report shows the run with the median throughput."""


def start_server(spec: ServerSpec, model: ServedModel, log_path: Path, timeout_s: float) -> RunningServer:
    """Start ``spec`` on a free port; wait for readiness, then for a first one-row prediction to succeed."""
    port = free_port()
    started = time.perf_counter()
    process = ServerProcess(spec.argv(port), cwd=spec.cwd, env=spec.env, log_path=log_path)
    try:
        probe = spec.ready
        ready_at = wait_for(process, port, probe.method, probe.path, probe.body, timeout_s)
        if ready_at is None:
            raise ServerFailed(_failure(process, f"not ready after {timeout_s:g} s", spec))
        first = spec.endpoints[0]
        predicted_at = wait_for(
            process, port, "POST", first.path, first.body(model.rows[:1]).encode(), 30, spec.headers
        )
        if predicted_at is None:
            raise ServerFailed(_failure(process, f"ready, but {first.path} never answered 200", spec))
    except BaseException:
        process.stop()
        raise
    return RunningServer(process, port, ready_at - started, predicted_at - started)


def _failure(process: ServerProcess, what: str, spec: ServerSpec) -> str:
    state = "running" if process.alive() else f"exited with {process.popen.returncode}"
    return f"{spec.title}: {what} ({state}); log {process.log_path}:\n{process.log_tail()}"


def measure_cold_start(
    spec: ServerSpec, model: ServedModel, runs: int, log_dir: Path, timeout_s: float
) -> tuple[ColdStart, RunningServer]:
    """Start the server ``runs`` times; return the timings and the last start, still running."""
    ready, first_predict = [], []
    server: RunningServer | None = None
    for run in range(1, runs + 1):
        if server is not None:
            server.process.stop()
        server = start_server(spec, model, log_dir / f"{spec.key}-{run}.log", timeout_s)
        ready.append(round(server.ready_s, 3))
        first_predict.append(round(server.first_predict_s, 3))
    assert server is not None
    return ColdStart(tuple(ready), tuple(first_predict)), server


def check_answers(
    port: int,
    endpoint: Endpoint,
    model: ServedModel,
    rows: tuple[int, ...] = GATE_ROWS,
    headers: Mapping[str, str] | None = None,
) -> str:
    """The correctness gate: 'passed' if requests of each size in ``rows`` get 200 and the reference outputs."""
    for n in rows:
        body = endpoint.body(model.rows[:n]).encode()
        answer = http_call(port, "POST", endpoint.path, body, extra_headers=headers)
        if answer.status != 200:
            return f"{n}-row request answered HTTP {answer.status}: {answer.body[:200]!r}"
        try:
            decoded = json.loads(answer.body)
        except json.JSONDecodeError:
            return f"{n}-row request answered with invalid JSON: {answer.body[:200]!r}"
        problem = payloads.compare(decoded, model.output_name, model.reference[:n], model.exact)
        if problem:
            return f"{n}-row request: {problem}"
    return "passed"


def prepare_load(
    work_dir: Path, name: str, endpoint: Endpoint, model: ServedModel, rows_per_request: int
) -> Path:
    """Write the bodies and the wrk Lua script for one endpoint and payload size; return the script."""
    bodies = payloads.bodies(model.rows, rows_per_request, BODIES_PER_PAYLOAD, endpoint.body)
    bodies_path = work_dir / f"{name}-{rows_per_request}rows.jsonl"
    bodies_path.write_text("\n".join(bodies) + "\n")
    return write_lua_script(work_dir / f"{name}-{rows_per_request}rows.lua", bodies_path, endpoint.path)


def measure(
    server: RunningServer,
    script: Path,
    endpoint: Endpoint,
    rows_per_request: int,
    connections: int,
    duration_s: float,
    round_number: int = 1,
    headers: Mapping[str, str] | None = None,
) -> Measurement:
    """One timed wrk run, with the server's CPU time per request."""
    load_average = os.getloadavg()[0]
    cpu_before = server.process.cpu_seconds()
    load = run_wrk(script, server.port, endpoint.path, connections, duration_s, headers)
    cpu_used = server.process.cpu_seconds() - cpu_before
    per_request = cpu_used / load.requests * 1e6 if load.requests else 0.0
    return Measurement(rows_per_request, load, round(per_request, 1), round(load_average, 2), round_number)


@dataclass(frozen=True)
class LiveEndpoint:
    """An endpoint of a running server that passed its gate, and where its measurements go."""

    spec: ServerSpec
    endpoint: Endpoint
    server: RunningServer
    result: EndpointResult

    @property
    def name(self) -> str:
        return f"{self.spec.key}-{self.endpoint.key}"


def gate(
    spec: ServerSpec, server: RunningServer, model: ServedModel, rows: tuple[int, ...]
) -> list[EndpointResult]:
    """Run the correctness gate on each of the server's endpoints, with one row and each payload size timed."""
    sizes = tuple(sorted({1, *rows}))
    results = []
    for endpoint in spec.endpoints:
        result = EndpointResult(
            endpoint.key, endpoint.path, check_answers(server.port, endpoint, model, sizes, spec.headers)
        )
        print(f"  {endpoint.path}: correctness gate {result.gate}", flush=True)
        results.append(result)
    return results


def measure_interleaved(live: list[LiveEndpoint], model: ServedModel, plan: LoadPlan, work_dir: Path) -> None:
    """Time every live endpoint at each payload size and connection count, taking turns.

    All servers stay up and each load setting is run on every endpoint before
    the next setting, so that drift in the machine's background load (other
    people's test runs on shared cores) falls on all servers alike rather than
    on whichever ran last. With several rounds, each round starts one endpoint
    further along, so none is always first. Each endpoint is warmed up per
    payload size first.
    """
    for rows in plan.rows_per_request:
        scripts = {e.name: prepare_load(work_dir, e.name, e.endpoint, model, rows) for e in live}
        for e in live:
            run_wrk(
                scripts[e.name],
                e.server.port,
                e.endpoint.path,
                max(plan.connections),
                plan.warmup_s,
                e.spec.headers,
            )
        for connections in plan.connections:
            print(f"-- {rows} row(s) per request, {connections} connection(s)", flush=True)
            for round_number in range(1, plan.rounds + 1):
                shift = (round_number - 1) % max(len(live), 1)
                for e in live[shift:] + live[:shift]:
                    if not e.server.process.alive():
                        continue
                    m = measure(
                        e.server,
                        scripts[e.name],
                        e.endpoint,
                        rows,
                        connections,
                        plan.duration_s,
                        round_number,
                        e.spec.headers,
                    )
                    e.result.measurements.append(m)
                    print(f"  {e.name:<26} {progress_line(m)}", flush=True)


def progress_line(m: Measurement) -> str:
    load = m.load
    return (
        f"{load.requests_per_s:>8.0f} req/s "
        f"{m.rows_per_s:>9.0f} rows/s  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:7.2f} ms  "
        f"errors {load.errors}  server CPU {m.server_cpu_us_per_request:.0f} µs/req  load {m.load_average_1m}"
    )
