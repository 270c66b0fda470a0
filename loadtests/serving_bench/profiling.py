"""Profile a server under wrk load with py-spy: a flamegraph SVG and a text summary of where time goes.

The server (``quayside serve`` by default, or one of the baselines) serves the
benchmark's forest; wrk keeps it busy with single-row requests while py-spy
records twice: once to a flamegraph SVG, once to raw collapsed stacks, which
are summarised here like ``py-spy top``: the functions with the most samples,
on their own (self) and with what they call (total), and the self time per
package. Samples of idle threads are left out, so percentages are of the
server's busy time; multiplied by its CPU time per request they estimate the
microseconds each part costs one request.

py-spy pauses the process for each sample (unless --nonblocking), so the server
runs a little slower while it is watched.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from serving_bench import envs, models, servers
from serving_bench.harness import ServerFailed, prepare_load, start_server
from serving_bench.paths import LOADTESTS_DIR, WORK_DIR, relative
from serving_bench.processes import install_cleanup, stop_all
from serving_bench.servers import ServerOptions, ServerSpec
from serving_bench.wrk import ensure_wrk, run_wrk

SERVERS = ("quayside", "handwritten", "handwritten-tuned", "bentoml", "mlflow")
# Python frames that sit in a blocking C call that py-spy can still count as busy: a pool thread waiting
# for work, a thread waiting on a condition. They are counted apart, not as time spent on requests.
_WAITING = {
    ("_worker", "concurrent/futures/thread.py"),
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
}
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True)
class ProfileSettings:
    server: str
    endpoint: str | None
    rows: int
    connections: int
    duration_s: float
    rate: int
    native: bool
    nonblocking: bool
    quayside_args: tuple[str, ...]
    out_dir: Path


def parse_args(argv: list[str] | None) -> ProfileSettings:
    parser = argparse.ArgumentParser(
        prog="profile_serving.sh",
        description=(
            "Serve the benchmark's RandomForest, keep it busy with wrk, and record it with py-spy "
            "(installed into loadtests/.venvs/py-spy): writes flamegraph.svg, stacks.txt (raw collapsed "
            "stacks) and summary.txt (top functions and packages by samples, with µs per request) to --out."
        ),
    )
    parser.add_argument(
        "--server", choices=SERVERS, default="quayside", help="server to profile (default: quayside)"
    )
    parser.add_argument(
        "--endpoint", help="endpoint key, e.g. v2 or invocations for Quayside (default: its first)"
    )
    parser.add_argument("--rows", type=int, default=1, help="rows per request (default: 1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default: 64)")
    parser.add_argument(
        "--duration", type=float, default=15.0, help="seconds per py-spy recording (default: 15)"
    )
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second (default: 100)")
    parser.add_argument("--native", action="store_true", help="include native (C/C++/Cython) frames")
    parser.add_argument(
        "--nonblocking", action="store_true", help="sample without pausing the server (less exact)"
    )
    parser.add_argument(
        "--quayside-args",
        default="",
        help="extra `quayside serve` options, e.g. --quayside-args=--no-batching (note the =)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: loadtests/results/profile-SERVER)")
    args = parser.parse_args(argv)
    return ProfileSettings(
        server=args.server,
        endpoint=args.endpoint,
        rows=args.rows,
        connections=args.connections,
        duration_s=args.duration,
        rate=args.rate,
        native=args.native,
        nonblocking=args.nonblocking,
        quayside_args=tuple(shlex.split(args.quayside_args)),
        out_dir=args.out or LOADTESTS_DIR / "results" / f"profile-{args.server}",
    )


def _spec(name: str, model: models.ServedModel, quayside_args: tuple[str, ...]) -> ServerSpec:
    options = ServerOptions()
    if name == "quayside":
        if not servers.quayside_serve_available():
            raise SystemExit("`quayside serve` is not available in this venv yet")
        return servers.quayside_spec(model, options, ("--max-batch-size", "128", *quayside_args))
    if name == "bentoml":
        return servers.bentoml_spec(model, options, envs.ensure_venv(envs.bentoml_venv()))
    if name == "mlflow":
        return servers.mlflow_spec(model, options, envs.ensure_venv(envs.mlflow_venv()))
    venv = envs.ensure_venv(envs.handwritten_venv())
    return servers.handwritten_spec(model, options, venv, tuned=name == "handwritten-tuned")


def _py_spy(pid: int, settings: ProfileSettings, output: Path, output_format: str, extra: list[str]) -> None:
    py_spy = envs.ensure_venv(envs.pyspy_venv()).bin("py-spy")
    command = [
        str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--rate", str(settings.rate),
        "--duration", f"{settings.duration_s:g}", "--format", output_format, "--output", str(output), *extra,
    ]  # fmt: skip
    if settings.native:
        command.append("--native")
    if settings.nonblocking:
        command.append("--nonblocking")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def _area(path: str) -> str:
    """A package-level name for a source file: 'quayside.serving.batching', 'starlette', 'stdlib: asyncio'."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/quayside/" in path:
        return "quayside." + path.split("/src/quayside/", 1)[1].removesuffix(".py").replace("/", ".")
    if "/lib/python3" in path:
        rest = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return "stdlib: " + rest.split("/", 1)[0].removesuffix(".py")
    return path or "native"


def _frame(raw: str) -> tuple[str, str]:
    match = _FRAME.match(raw.strip())
    if not match:
        return raw.strip(), ""
    return match["function"], match["file"]


def summarize(stacks_path: Path, cpu_us_per_request: float, top: int = 25) -> str:
    """A ``py-spy top``-like text report from raw collapsed stacks."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    area_samples: Counter[str] = Counter()
    total = waiting = 0
    for line in stacks_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if (frames[-1][0], _short(frames[-1][1])) in _WAITING:
            waiting += count
            continue
        total += count
        names = [f"{function} ({_short(file)})" for function, file in frames]
        self_samples[names[-1]] += count
        area_samples[_area(frames[-1][1])] += count
        for name in set(names):
            total_samples[name] += count
    if not total:
        return "no samples (was the server busy?)\n"

    def block(title: str, counter: Counter[str], what: str) -> list[str]:
        lines = [title, f"{'%':>6} {'µs/req':>8}  {what}"]
        for name, count in counter.most_common(top):
            share = count / total
            lines.append(f"{share * 100:6.1f} {share * cpu_us_per_request:8.1f}  {name}")
        return [*lines, ""]

    head = [
        f"{total} busy samples (and {waiting} of threads waiting for work, left out); server CPU "
        f"{cpu_us_per_request:.0f} µs per request; µs/req = share of busy samples × that",
        "'Runner.run (asyncio/runners.py)' as self time is uvloop's C loop: polling, reads and callbacks;",
        "'RequestResponseCycle.send' self time is mostly the socket write (a system call).",
        "",
    ]
    return "\n".join(
        head
        + block("== self time by package (the frame on top of the stack)", area_samples, "package")
        + block("== self time by function", self_samples, "function")
        + block("== total time by function (itself and what it calls)", total_samples, "function")
    )


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    install_cleanup()
    ensure_wrk()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    print("training the forest ...", flush=True)
    mlflow_python = envs.ensure_venv(envs.mlflow_venv()).python if settings.server == "mlflow" else None
    model = models.build_random_forest(WORK_DIR, mlflow_python)
    spec = _spec(settings.server, model, settings.quayside_args)
    endpoint = next((e for e in spec.endpoints if e.key == settings.endpoint), spec.endpoints[0])
    try:
        server = start_server(spec, model, WORK_DIR / "logs" / f"profile-{spec.key}.log", 180)
    except ServerFailed as e:
        print(e)
        return 1
    try:
        script = prepare_load(WORK_DIR, f"profile-{spec.key}-{endpoint.key}", endpoint, model, settings.rows)
        run_wrk(script, server.port, endpoint.path, settings.connections, 3)
        load_s = 2 * settings.duration_s + 6
        wrk_command = [
            "wrk", f"--threads={min(settings.connections, 2)}", f"--connections={settings.connections}",
            f"--duration={load_s:g}s", f"--script={script}", f"http://127.0.0.1:{server.port}{endpoint.path}",
        ]  # fmt: skip
        print(f"profiling {spec.title} {endpoint.path} under wrk -c {settings.connections} ...", flush=True)
        cpu_before, started = server.process.cpu_seconds(), time.perf_counter()
        wrk = subprocess.Popen(wrk_command, stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            _py_spy(server.process.pid, settings, settings.out_dir / "flamegraph.svg", "flamegraph", [])
            stacks = settings.out_dir / "stacks.txt"
            _py_spy(server.process.pid, settings, stacks, "raw", ["--full-filenames", "--nolineno"])
        finally:
            wrk_output, _ = wrk.communicate(timeout=load_s + 30)
        cpu_used, elapsed = server.process.cpu_seconds() - cpu_before, time.perf_counter() - started
    finally:
        server.process.stop()
        stop_all()
    requests = _wrk_requests(wrk_output)
    cpu_us = cpu_used / requests * 1e6 if requests else 0.0
    header = (
        f"{spec.title} {endpoint.path}, {settings.rows} row(s) per request, wrk -c {settings.connections}: "
        f"{requests / elapsed:.0f} req/s while profiled (py-spy at {settings.rate} Hz)\n"
    )
    summary = header + summarize(stacks, cpu_us)
    (settings.out_dir / "summary.txt").write_text(summary)
    print(summary)
    print(f"wrote {relative(settings.out_dir)}/flamegraph.svg, stacks.txt and summary.txt")
    return 0


def _wrk_requests(output: str) -> int:
    match = re.search(r"(\d+) requests in", output)
    return int(match.group(1)) if match else 0
