"""Server subprocesses: each in its own session (process group), always stopped.

Every server is started with ``start_new_session=True`` so that it and the
workers it forks (uvicorn's, BentoML's, MLflow's) share one process group that
can be signalled at once. Descendants that moved to a group of their own are
found through /proc and signalled too. ``stop_all`` runs at exit, and SIGTERM
and SIGHUP are turned into ``SystemExit`` so that ``finally`` blocks and the
exit hook run on them as they do on Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_running: set[ServerProcess] = set()


@dataclass(frozen=True)
class HttpAnswer:
    """A status and body; status 0 when no HTTP answer came (refused, reset, timed out)."""

    status: int
    body: bytes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout_s: float = 10.0,
    extra_headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """One HTTP/1.1 request to 127.0.0.1:``port``; never raises for connection problems."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    headers.update(extra_headers or {})
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, response.read())
    except (OSError, http.client.HTTPException):
        return HttpAnswer(0, b"")
    finally:
        connection.close()


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children = _children_by_parent()
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    user, system = int(fields[11]), int(fields[12])  # utime, stime
    return (user + system) / _CLOCK_TICKS


class ServerProcess:
    """A server started in its own process group, with its output in a log file."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its live workers."""
        return sum(_cpu_seconds(pid) for pid in process_tree(self.pid))

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM to the group and every descendant, then SIGKILL to whatever is left."""
        _running.discard(self)
        pids = process_tree(self.pid) if self.alive() else []
        self._signal(pids, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace_s)
        self._signal(process_tree(self.pid) if self.alive() else pids, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace_s)

    def _signal(self, pids: Sequence[int], signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet."""
    for server in list(_running):
        server.stop(grace_s=2.0)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Stop all servers at exit, on Ctrl-C (KeyboardInterrupt), SIGTERM and SIGHUP."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)


def run_cli(main: Callable[[], int]) -> NoReturn:
    """Exit with ``main()``'s status; on Ctrl-C (servers already stopped by then), say so and exit 130."""
    try:
        status = main()
    except KeyboardInterrupt:
        print("\ninterrupted: every server this run started has been stopped", file=sys.stderr)
        status = 130
    sys.exit(status)


def wait_for(
    server: ServerProcess,
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
) -> float | None:
    """Poll until the probe answers 200: the ``perf_counter`` time it did, or None if the server died or timed out."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if http_call(port, method, path, body, timeout_s=2.0, extra_headers=headers).status == 200:
            return time.perf_counter()
        if not server.alive():
            return None
        time.sleep(0.01)
    return None
