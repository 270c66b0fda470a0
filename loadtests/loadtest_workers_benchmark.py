"""How far one load generator gets against how far Locust's distributed mode gets, on the same server.

    .venv/bin/python loadtests/loadtest_workers_benchmark.py [--duration 20s] [--users 32]
        [--server-workers 2] [--generator-workers 1,2] [--package DIR] [--out results.json]

Starts ``quayside serve PACKAGE --workers 2`` once (a small scikit-learn regressor trained
here unless ``--package`` names one), then runs ``quayside loadtest URL --workers N`` for each
N in ``--generator-workers`` against it, one after the other, and prints the requests per
second each reached, its latency, and each generator process's CPU (a process over 90% of a
core is saturated: the figures then bound the generator, not the server). On a machine with
few cores the server and the generators share them, so read the figures with the core count
printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quayside(*args: str) -> list[str]:
    return [sys.executable, "-m", "quayside", *args]


def train_package(directory: Path) -> Path:
    """A ridge regression on scikit-learn's diabetes data (10 float32 features), converted to ONNX."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    import quayside

    features, target = load_diabetes(return_X_y=True)
    features = features.astype(np.float32)
    path = directory / "diabetes"
    quayside.save_model(
        Ridge().fit(features, target), path, input_example=features[:20], to_onnx=True, name="diabetes"
    )
    return path


def start_server(package: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = _quayside(
        "serve", str(package), "--port", str(port), "--workers", str(workers), "--grpc-port", "0", "--quiet"
    )
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the server was not ready after 180 s: {log.read_text()[-2000:]}")


def run_loadtest(
    url: str, package: Path, *, workers: int, users: int, duration: str, out: Path
) -> dict[str, Any]:
    command = _quayside(
        "loadtest", f"{url}/v2/models/diabetes", "--model", str(package), "--workers", str(workers),
        "--users", str(users), "--spawn-rate", str(users), "--duration", duration, "--out", str(out),
    )  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"loadtest --workers {workers} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads((out / "report.json").read_text())


def figures(report: dict[str, Any]) -> dict[str, Any]:
    summary, generator = report["summary"], report["generator"]
    return {
        "generator_workers": generator.get("workers", 0),
        "requests": summary["requests"],
        "failures": summary["failures"],
        "rps": summary["rps"],
        "p50_ms": summary["p50_ms"],
        "p95_ms": summary["p95_ms"],
        "p99_ms": summary["p99_ms"],
        "busiest_process_cpu_percent": generator["cpu_percent"],
        "saturated": generator["saturated"],
        "processes": [
            {k: p.get(k) for k in ("role", "index", "requests", "cpu_percent", "saturated") if k in p}
            for p in generator.get("by_process", [])
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument(
        "--generator-workers", default="1,2", help="comma-separated --workers values to compare"
    )
    parser.add_argument("--package", type=Path, help="a model package taking one float tensor (-1, 10)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    counts = [int(n) for n in args.generator_workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="quayside-workers-bench-") as scratch:
        work = Path(scratch)
        package = args.package or train_package(work)
        server, url = start_server(package, args.server_workers, work / "server.log")
        try:
            results = [
                figures(
                    run_loadtest(
                        url, package, workers=n, users=args.users, duration=args.duration, out=work / f"w{n}"
                    )
                )
                for n in counts
            ]
        finally:
            server.terminate()
            server.wait(30)
    print(
        f"quayside serve --workers {args.server_workers}; {args.users} users for {args.duration}; {os.cpu_count()} cores"
    )
    print(
        f"{'--workers':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'failures':>8}  generator CPU (% of a core)"
    )
    for row in results:
        shares = ", ".join(
            f"{p['role']}{' ' + str(p['index']) if 'index' in p else ''} {p['cpu_percent']:g}%{' SATURATED' if p['saturated'] else ''}"
            for p in row["processes"]
        )
        print(
            f"{max(row['generator_workers'], 1):>9} {row['rps']:>9.1f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {row['failures']:>8}  {shares}"
        )
    if len(results) >= 2 and results[0]["rps"]:
        print(
            f"ratio --workers {counts[-1]} / --workers {counts[0]}: {results[-1]['rps'] / results[0]['rps']:.2f}x"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"cores": os.cpu_count(), "users": args.users, "duration": args.duration, "results": results},
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
