"""Locust's distributed mode on this machine: a ``MasterRunner`` here, ``WorkerRunner`` processes beside it.

Each worker is ``python -m quayside.loadtesting.worker`` (:mod:`.worker`): it runs the
same user class a single-process run does, and adds to every report it sends the master
(Locust's own ``report_to_master`` event, beside Locust's stats) the requests it finished
since the last one: when, how long, and the failure type. The master's
``worker_report`` listener feeds those to the :class:`~.runner.Recorder`, so a
distributed run's report has the same exact percentiles and per-second series as a
local one, and records each worker's request count as Locust's own stats gave it.

The master measures each worker's CPU time (psutil, from the worker's pid) over the
same window as its own. Nothing here distributes load: Locust's master assigns the users
to the workers and starts and stops them.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from quayside.errors import UnavailableError
from quayside.loadtesting.payloads import Payloads
from quayside.loadtesting.runner import (
    LoadOptions,
    LoadResult,
    Recorder,
    WorkerFigures,
    drive,
    user_class_for,
)

REPORT_KEY = "quayside"
"""The key of Quayside's part of a worker report: ``{"pid", "samples", "stopped"}``."""
READY_TIMEOUT_S = 60.0
FINAL_REPORT_TIMEOUT_S = 30.0


def write_payloads(payloads: Payloads, path: Path) -> Path:
    """The payloads as a JSON file a worker process reads back with :func:`read_payloads`."""
    document = {
        "protocol": payloads.protocol,
        "path": payloads.path,
        "content_type": payloads.content_type,
        "rows": payloads.rows,
        "bodies": [base64.b64encode(body).decode("ascii") for body in payloads.bodies],
    }
    path.write_text(json.dumps(document))
    return path


def read_payloads(path: Path) -> Payloads:
    document = json.loads(path.read_text())
    bodies = tuple(base64.b64decode(body) for body in document["bodies"])
    return Payloads(
        document["protocol"], document["path"], document["content_type"], bodies, document["rows"]
    )


@dataclass
class WorkerTally:
    """What the master has heard from one worker: its pid, Locust's request counts, whether it has stopped."""

    pid: int | None = None
    requests: int = 0
    failures: int = 0
    stopped: bool = False


@dataclass
class Fleet:
    """The master's view of its workers, fed by Locust's ``worker_report`` event."""

    recorder: Recorder
    tallies: dict[str, WorkerTally] = field(default_factory=dict)

    def on_report(self, client_id: str, data: Mapping[str, Any]) -> None:
        ours = data.get(REPORT_KEY)
        if not isinstance(ours, Mapping):
            return  # a worker that is not Quayside's: it cannot be folded in, so it is not counted
        tally = self.tallies.setdefault(client_id, WorkerTally())
        tally.pid = int(ours["pid"])
        total = data.get("stats_total") or {}
        tally.requests += int(total.get("num_requests", 0))
        tally.failures += int(total.get("num_failures", 0))
        tally.stopped = bool(ours["stopped"])
        for finished_at, latency_ms, error in ours["samples"]:
            self.recorder.add(float(finished_at), float(latency_ms), error)

    def all_stopped(self, expected: int) -> bool:
        return len(self.tallies) >= expected and all(t.stopped for t in self.tallies.values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_worker(
    index: int, *, port: int, payload_file: Path, target: str, logs: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "quayside.loadtesting.worker",
        "--master-port", str(port), "--payloads", str(payload_file), "--target", target,
    ]  # fmt: skip
    with (logs / f"worker-{index}.log").open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _log_tail(logs: Path, index: int) -> str:
    text = (logs / f"worker-{index}.log").read_text(errors="replace").strip()
    return text.splitlines()[-1] if text else "no output"


def _wait_for_workers(master: Any, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    import gevent

    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(master.clients.ready) < len(processes):
        for index, process in enumerate(processes):
            if process.poll() is not None:
                raise UnavailableError(
                    f"load-test worker {index + 1} exited with {process.returncode} before it connected: "
                    f"{_log_tail(logs, index)}"
                )
        if time.monotonic() > deadline:
            raise UnavailableError(
                f"only {len(master.clients.ready)} of {len(processes)} load-test workers connected to "
                f"Locust's master within {READY_TIMEOUT_S:g} s"
            )
        gevent.sleep(0.1)


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    import psutil

    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_distributed(target: str, payloads: Payloads, options: LoadOptions, *, display: Console) -> LoadResult:
    """Locust's master here and ``options.workers`` local workers load ``target``; one result for all of them."""
    import gevent
    from locust.env import Environment

    recorder = Recorder()
    fleet = Fleet(recorder)
    with tempfile.TemporaryDirectory(prefix="quayside-loadtest-") as scratch:
        logs = Path(scratch)
        payload_file = write_payloads(payloads, logs / "payloads.json")
        port = _free_port()
        environment = Environment(user_classes=[user_class_for(payloads, target)])
        environment.events.worker_report.add_listener(fleet.on_report)
        master = environment.create_master_runner("127.0.0.1", port)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for index in range(options.workers):
                processes.append(
                    _spawn_worker(index, port=port, payload_file=payload_file, target=target, logs=logs)
                )
            _wait_for_workers(master, processes, logs)
            pids = [process.pid for process in processes]
            starting: list[Any] = []
            cpu_before, master_cpu_before = _cpu_seconds(pids), time.process_time()
            elapsed = drive(
                recorder,
                options,
                start=lambda: starting.append(gevent.spawn(master.start, options.users, options.spawn_rate)),
                user_count=lambda: master.user_count,
                display=display,
            )
            cpu_after, master_cpu_s = _cpu_seconds(pids), time.process_time() - master_cpu_before
            gevent.killall(starting)
            master.stop()
            _wait_for_final_reports(fleet, options.workers)
            master.quit()
        finally:
            _stop(processes)
    by_pid = {tally.pid: tally for tally in fleet.tallies.values()}
    workers = tuple(
        WorkerFigures(
            index=index + 1,
            pid=pid,
            requests=by_pid[pid].requests if pid in by_pid else 0,
            failures=by_pid[pid].failures if pid in by_pid else 0,
            cpu_s=max(0.0, cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0)),
            wall_s=elapsed,
        )
        for index, pid in enumerate(pids)
    )
    return recorder.result(
        target, payloads, options, elapsed_s=elapsed, generator_cpu_s=master_cpu_s, workers=workers
    )


def _wait_for_final_reports(fleet: Fleet, expected: int) -> None:
    """Until every worker has sent the report it made after its users stopped: its last requests are in it."""
    import gevent

    deadline = time.monotonic() + FINAL_REPORT_TIMEOUT_S
    while not fleet.all_stopped(expected):
        if time.monotonic() > deadline:
            raise UnavailableError(
                f"{sum(not t.stopped for t in fleet.tallies.values()) or expected} load-test worker(s) sent no "
                f"final report within {FINAL_REPORT_TIMEOUT_S:g} s of the stop, so the run cannot be counted whole"
            )
        gevent.sleep(0.05)
