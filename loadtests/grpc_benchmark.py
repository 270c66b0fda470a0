"""gRPC against REST on one ``quayside serve``: the serving benchmark's ONNX RandomForest, 64 concurrent callers.

    .venv/bin/python loadtests/grpc_benchmark.py [--duration 10] [--warmup 3] [--concurrency 64] [--workers 1]

One server answers both transports (``--grpc-port``), so the model, its batcher and
its ONNX Runtime session are the same for both; only the transport differs. Each cell
(transport x rows per request: 1 and 100) runs ``--warmup`` seconds unmeasured, then
``--duration`` seconds measured, with ``--concurrency`` callers in closed loops.

Both clients are Python asyncio on one event loop in this process, each request body
built once up front from the same rows (:func:`quayside.loadtesting.payloads.build_payloads`,
one seed): REST posts V2 JSON with ``httpx.AsyncClient`` over HTTP/1.1 keep-alive (one
connection per caller), gRPC calls ``ModelInfer`` with ``raw_input_contents`` on one
``grpc.aio`` channel (HTTP/2, the callers multiplexed), sending the serialised bytes
without re-encoding. The client design, not only the server, bounds these figures; the
client's own CPU share is reported beside each cell so a saturated client shows.

Prints requests/s, rows/s, p50 and p99 per cell and writes loadtests/grpc.json. The
targets (reported, not asserted): single-row gRPC requests/s at or above REST's, and
100-row gRPC rows/s at least 1.5x REST's.

After the server's cells come the floor's (``grpc-floor``): the same client against
a bare ``grpc.aio`` server with no model (:mod:`serving_bench.grpc_floor`), answering
the response the real server gave for those rows. No server built on ``grpc.aio``
answers more calls than that on this machine with this client, so the floor shows
how much of a gap to REST is the gRPC library's own cost and how much Quayside's.
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
from typing import Any

import numpy as np
from serving_bench import machine
from serving_bench.closed_loop import Latencies, read_status
from serving_bench.models import build_random_forest
from serving_bench.paths import LOADTESTS_DIR, WORK_DIR, relative
from serving_bench.processes import ServerProcess, free_port, install_cleanup, run_cli, wait_for
from serving_bench.servers import quayside_command

MODEL = "rf"
ROWS_PER_REQUEST = (1, 100)
TRANSPORTS = ("rest", "grpc")
FLOOR = "grpc-floor"
RESULTS_JSON = LOADTESTS_DIR / "grpc.json"
TARGETS = {
    "single-row gRPC requests/s >= REST's": (1, "requests_per_s", 1.0),
    "100-row gRPC rows/s >= 1.5x REST's": (100, "rows_per_s", 1.5),
}
"""Target name: (rows per request, figure, the gRPC/REST ratio it needs)."""


@dataclass(frozen=True)
class Cell:
    """One measured cell: a transport and a request size, under the run's concurrency."""

    transport: str
    rows: int
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    rows_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    client_cpu_percent: float
    server_cpu_percent: float


def machine_details() -> dict[str, str]:
    """The serving benchmark's machine header, without its wrk version: this benchmark runs no wrk."""
    details = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{machine._cpu_model()}, {os.cpu_count()} logical CPUs",
        "memory": machine._memory_gib(),
        "os": f"{machine._os_name()}, Linux {os.uname().release}",
        "python": sys.version.split()[0],
        "commit": machine._git_revision(),
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    return details


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each cell")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent callers")
    parser.add_argument("--workers", type=int, default=1, help="quayside serve --workers")
    parser.add_argument(
        "--rest-client",
        choices=("streams", "httpx"),
        default="streams",
        help="REST caller: asyncio streams (default) or httpx.AsyncClient",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_JSON, help="the JSON written")
    return parser.parse_args(argv)


def request_bodies(model: Any, rows: int) -> dict[str, tuple[bytes, ...]]:
    """For each transport, 64 ready bodies of ``rows`` rows: the same rows, one seed."""
    from quayside.loadtesting.payloads import build_payloads
    from quayside.packager.manifest import PackageReader

    signature = PackageReader.open(model.package_dir).manifest.signature.inputs
    example = {signature.names[0]: model.rows}
    return {
        transport: build_payloads(
            signature, example, protocol="v2" if transport == "rest" else "grpc", model_name=MODEL, rows=rows
        ).bodies
        for transport in TRANSPORTS
    }


async def _callers(call: Any, bodies: tuple[bytes, ...], concurrency: int, latencies: Latencies) -> None:
    async def caller(index: int) -> None:
        position = index
        while time.perf_counter() < latencies.measure_until:
            started = time.perf_counter()
            ok = await call(bodies[position % len(bodies)], index)
            latencies.record(started, time.perf_counter(), ok)
            position += concurrency

    await asyncio.gather(*(caller(index) for index in range(concurrency)))


async def drive_rest(port: int, bodies: tuple[bytes, ...], concurrency: int, latencies: Latencies) -> None:
    import httpx

    # One client (one keep-alive connection) per caller: httpcore's shared pool does work per
    # request that grows with its connections, which at 64 made the client, not the server, the
    # bottleneck (a fraction of a core of server CPU at full client CPU).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer"
    clients = [
        httpx.AsyncClient(http1=True, http2=False, limits=limits, timeout=30.0, trust_env=False)
        for _ in range(concurrency)
    ]

    async def call(body: bytes, index: int) -> bool:
        try:
            return (await clients[index].post(url, content=body, headers=headers)).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await _callers(call, bodies, concurrency, latencies)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def drive_rest_streams(
    port: int, bodies: tuple[bytes, ...], concurrency: int, latencies: Latencies
) -> None:
    """REST over asyncio streams: per caller one keep-alive connection, each request written whole."""
    requests = {
        body: (
            f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    }
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]

    async def call(body: bytes, index: int) -> bool:
        reader, writer = connections[index]
        writer.write(requests[body])
        return await read_status(reader) == 200

    try:
        await _callers(call, bodies, concurrency, latencies)
    finally:
        for _, writer in connections:
            writer.close()


async def drive_grpc(port: int, bodies: tuple[bytes, ...], concurrency: int, latencies: Latencies) -> None:
    import grpc

    from quayside.loadtesting.grpc_bodies import MODEL_INFER

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        infer = channel.unary_unary(MODEL_INFER)  # no serialisers: the bodies are serialised requests

        async def call(body: bytes, _index: int) -> bool:
            try:
                await infer(body, timeout=30.0)
                return True
            except grpc.RpcError:
                return False

        await _callers(call, bodies, concurrency, latencies)


REST_CLIENTS = {
    "streams": (
        drive_rest_streams,
        "asyncio streams, HTTP/1.1 keep-alive, one connection per caller, V2 JSON",
    ),
    "httpx": (drive_rest, "httpx.AsyncClient, HTTP/1.1 keep-alive, one connection per caller, V2 JSON"),
}
"""Each ``--rest-client``: its driver, and how the results name it."""


def grpc_response(port: int, body: bytes) -> bytes:
    """The serialised response the server at ``port`` gives for the serialised request ``body``."""
    import grpc

    from quayside.loadtesting.grpc_bodies import MODEL_INFER

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return channel.unary_unary(MODEL_INFER)(body, timeout=30.0)


def start_floor(port: int, response: bytes, rows: int) -> ServerProcess | None:
    """The floor server answering ``response``, once it takes calls; None (and its log) if it did not start."""
    import grpc

    response_path = WORK_DIR / "grpc" / f"floor-response-{rows}.bin"
    response_path.write_bytes(response)
    argv = [sys.executable, str(LOADTESTS_DIR / "serving_bench" / "grpc_floor.py"), "--port", str(port)]
    argv += ["--response", str(response_path)]
    floor = ServerProcess(argv, cwd=WORK_DIR, env=os.environ, log_path=WORK_DIR / "grpc" / "floor.log")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            print(f"the floor server did not start:\n{floor.log_tail()}", file=sys.stderr)
            floor.stop()
            return None
    return floor


def run_cell(
    transport: str,
    rows: int,
    ports: dict[str, int],
    bodies: tuple[bytes, ...],
    args: argparse.Namespace,
    server: Any,
) -> Cell:
    start = time.perf_counter()
    latencies = Latencies(start + args.warmup, start + args.warmup + args.duration)
    drive = REST_CLIENTS[args.rest_client][0] if transport == "rest" else drive_grpc  # the floor's too
    cpu_client, cpu_server, measured_at = None, None, None

    async def main() -> None:
        nonlocal cpu_client, cpu_server, measured_at

        async def mark() -> None:
            nonlocal cpu_client, cpu_server, measured_at
            await asyncio.sleep(args.warmup)
            cpu_client, cpu_server, measured_at = (
                time.process_time(),
                server.cpu_seconds(),
                time.perf_counter(),
            )

        await asyncio.gather(drive(ports[transport], bodies, args.concurrency, latencies), mark())

    asyncio.run(main())
    span = time.perf_counter() - (measured_at or start)
    client_cpu = 100.0 * (time.process_time() - (cpu_client or 0.0)) / span
    server_cpu = 100.0 * (server.cpu_seconds() - (cpu_server or 0.0)) / span
    values = np.asarray(latencies.latencies_ms)
    done = len(values)
    return Cell(
        transport=transport,
        rows=rows,
        concurrency=args.concurrency,
        duration_s=args.duration,
        requests=done,
        errors=latencies.errors,
        requests_per_s=round(done / args.duration, 1),
        rows_per_s=round(done * rows / args.duration, 1),
        p50_ms=round(float(np.percentile(values, 50)), 3) if done else None,
        p99_ms=round(float(np.percentile(values, 99)), 3) if done else None,
        client_cpu_percent=round(client_cpu, 1),
        server_cpu_percent=round(server_cpu, 1),
    )


def cells_by_key(cells: list[Cell]) -> dict[tuple[str, int], Cell]:
    """The cells by (transport, rows per request)."""
    return {(cell.transport, cell.rows): cell for cell in cells}


def judge(cells: list[Cell]) -> dict[str, dict[str, Any]]:
    """Each target's gRPC/REST ratio and whether it was met (reported, never asserted)."""
    cell = cells_by_key(cells)
    verdicts = {}
    for name, (rows, figure, needed) in TARGETS.items():
        rest, grpc_ = getattr(cell[("rest", rows)], figure), getattr(cell[("grpc", rows)], figure)
        ratio = grpc_ / rest if rest else float("inf")
        verdicts[name] = {"ratio": round(ratio, 3), "needed": needed, "met": ratio >= needed}
    return verdicts


def floor_ratios(cells: list[Cell]) -> dict[int, float]:
    """For each request size, the floor's requests/s over REST's."""
    cell = cells_by_key(cells)
    return {
        rows: round(cell[(FLOOR, rows)].requests_per_s / cell[("rest", rows)].requests_per_s, 3)
        for rows in ROWS_PER_REQUEST
        if (FLOOR, rows) in cell and cell[("rest", rows)].requests_per_s
    }


def print_table(cells: list[Cell], verdicts: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'transport':<10}{'rows':>5}{'req/s':>11}{'rows/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'client cpu':>12}{'server cpu':>12}")  # fmt: skip
    for c in cells:
        p50 = f"{c.p50_ms:.2f}" if c.p50_ms is not None else "-"
        p99 = f"{c.p99_ms:.2f}" if c.p99_ms is not None else "-"
        print(f"{c.transport:<10}{c.rows:>5}{c.requests_per_s:>11.1f}{c.rows_per_s:>12.1f}{p50:>9}{p99:>9}"
              f"{c.errors:>8}{c.client_cpu_percent:>11.0f}%{c.server_cpu_percent:>11.0f}%")  # fmt: skip
    print()
    for name, verdict in verdicts.items():
        print(f"{'met' if verdict['met'] else 'NOT met':>8}: {name} (gRPC/REST = {verdict['ratio']:.2f})")
    for rows, ratio in floor_ratios(cells).items():
        print(f"   floor: a bare grpc.aio server, {rows} row(s): {ratio:.2f}x REST's requests/s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    print("training and saving the RandomForest ...", file=sys.stderr)
    model = build_random_forest(WORK_DIR / "grpc", mlflow_python=None)
    ports = {"rest": free_port(), "grpc": free_port()}
    argv_ = [*quayside_command(), "serve", str(model.package_dir), "--host", "127.0.0.1", "--quiet"]
    argv_ += ["--port", str(ports["rest"]), "--grpc-port", str(ports["grpc"]), "--workers", str(args.workers)]
    server = ServerProcess(argv_, cwd=WORK_DIR, env=os.environ, log_path=WORK_DIR / "grpc" / "server.log")
    try:
        if wait_for(server, ports["rest"], "GET", "/v2/health/ready", None, timeout_s=120) is None:
            print(f"the server did not become ready:\n{server.log_tail()}", file=sys.stderr)
            return 1
        cells, responses = [], {}
        for rows in ROWS_PER_REQUEST:
            bodies = request_bodies(model, rows)
            responses[rows] = (bodies["grpc"], grpc_response(ports["grpc"], bodies["grpc"][0]))
            for transport in TRANSPORTS:
                print(f"{transport}, {rows} row(s) per request ...", file=sys.stderr)
                cells.append(run_cell(transport, rows, ports, bodies[transport], args, server))
    finally:
        server.stop()
    ports[FLOOR] = free_port()
    for rows, (bodies_, response) in responses.items():
        floor = start_floor(ports[FLOOR], response, rows)
        if floor is None:
            return 1
        try:
            print(f"{FLOOR}, {rows} row(s) per request ...", file=sys.stderr)
            cells.append(run_cell(FLOOR, rows, ports, bodies_, args, floor))
        finally:
            floor.stop()
    verdicts = judge(cells)
    print_table(cells, verdicts)
    document = {
        "machine": machine_details(),
        "command": " ".join([".venv/bin/python", "loadtests/grpc_benchmark.py", *(argv or sys.argv[1:])]),
        "settings": {
            "model": "RandomForest (100 trees, depth 8, 20 float32 features) as ONNX, from serving_bench.models",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "rest_client": REST_CLIENTS[args.rest_client][1],
            "grpc_client": "grpc.aio, one channel (HTTP/2), ModelInfer with raw_input_contents",
            "grpc_floor": "serving_bench/grpc_floor.py: grpc.aio on uvloop, no model, the server's own response",
        },
        "cells": [asdict(cell) for cell in cells],
        "targets": verdicts,
        "floor_over_rest": {str(rows): ratio for rows, ratio in floor_ratios(cells).items()},
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {relative(args.out)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
