"""Locust as a library: an Environment and a LocalRunner drive the users; every request is recorded.

Latencies are kept per request (not Locust's rounded buckets), so the report's
percentiles are exact; each second closes one point of the time series. A Rich
live panel on stderr shows the last second and the totals while it runs. The users
post over HTTP (:mod:`.users`) or call ``ModelInfer`` over gRPC (:mod:`.grpc_users`),
as the payloads' protocol says; both report to the same recorder.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from quayside.errors import UsageError
from quayside.loadtesting.grpc_users import GrpcFailure
from quayside.loadtesting.payloads import Payloads
from quayside.loadtesting.users import import_locust, user_class


@dataclass(frozen=True)
class LoadOptions:
    """How hard and how long: simulated users, users started per second, seconds of load."""

    users: int = 32
    spawn_rate: float = 8.0
    duration_s: float = 30.0

    def __post_init__(self) -> None:
        if self.users < 1:
            raise UsageError(f"--users must be at least 1, not {self.users}")
        if self.spawn_rate <= 0:
            raise UsageError(f"--spawn-rate must be above 0, not {self.spawn_rate}")
        if self.duration_s <= 0:
            raise UsageError(f"--duration must be above 0 s, not {self.duration_s}")


@dataclass(frozen=True)
class Tick:
    """One second of the time series: what finished in it, and how many users were running."""

    t: float
    users: int
    latencies_ms: tuple[float, ...]
    failures: int


@dataclass
class Recorder:
    """Collects every request Locust reports, and cuts them into one-second ticks."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    ticks: list[Tick] = field(default_factory=list)
    _pending: list[float] = field(default_factory=list)
    _pending_failures: int = 0
    closed: bool = False

    def on_request(self, response_time: float, exception: BaseException | None = None, **_: Any) -> None:
        if self.closed:
            return
        latency = float(response_time)
        self.latencies_ms.append(latency)
        self._pending.append(latency)
        if exception is not None:
            self.failures += 1
            self._pending_failures += 1
            self.errors[_error_type(exception)] += 1

    def tick(self, t: float, users: int) -> Tick:
        tick = Tick(round(t, 3), users, tuple(self._pending), self._pending_failures)
        self.ticks.append(tick)
        self._pending, self._pending_failures = [], 0
        return tick


def _error_type(exception: BaseException) -> str:
    # Failures marked by the user class carry their type as the message (HTTP 422 signature_error).
    if type(exception).__name__ == "CatchResponseError" or isinstance(exception, GrpcFailure):
        return str(exception)
    return type(exception).__name__


@dataclass(frozen=True)
class LoadResult:
    """Everything measured in one run, before it is summarised into a report."""

    target: str
    """The base URL loaded over HTTP, or the HOST:PORT loaded over gRPC."""
    payloads: Payloads
    options: LoadOptions
    started_at: float
    elapsed_s: float
    latencies_ms: tuple[float, ...]
    failures: int
    errors: dict[str, int]
    ticks: tuple[Tick, ...]
    generator_cpu_s: float = 0.0
    """CPU time the load generator (this process) used during the run: near ``elapsed_s`` means one
    core was saturated, and the figures then bound the generator as much as the server."""


def _panel(recorder: Recorder, tick: Tick | None, elapsed: float, options: LoadOptions) -> Any:
    table = Table(title=f"load test: {elapsed:.0f}/{options.duration_s:.0f} s", title_justify="left")
    for column in ("users", "req/s (last s)", "p95 ms (last s)", "requests", "failures"):
        table.add_column(column, justify="right")
    if tick is not None:
        last = sorted(tick.latencies_ms)
        p95 = f"{last[min(len(last) - 1, int(0.95 * len(last)))]:.1f}" if last else "-"
        table.add_row(
            str(tick.users),
            str(len(last)),
            p95,
            str(len(recorder.latencies_ms)),
            Text(str(recorder.failures), style="red" if recorder.failures else ""),
        )
    return Group(table)


def _user_class(payloads: Payloads, target: str) -> type:
    if payloads.protocol != "grpc":
        return user_class(payloads, target.rstrip("/"))
    from quayside.loadtesting.grpc_users import check_reachable, grpc_user_class

    users = grpc_user_class(payloads, target)  # puts grpc in gevent mode before the first channel
    check_reachable(target)
    return users


def run_load(
    target: str, payloads: Payloads, options: LoadOptions, *, console: Console | None = None
) -> LoadResult:
    """Load ``target`` with users sending the payloads for ``options.duration_s`` seconds.

    ``target`` is the server's base URL, or its gRPC address (HOST:PORT) for ``grpc`` payloads.
    """
    import_locust()
    import gevent
    from locust.env import Environment

    recorder = Recorder()
    environment = Environment(user_classes=[_user_class(payloads, target)])
    environment.events.request.add_listener(recorder.on_request)
    runner = environment.create_local_runner()
    started_at = time.time()
    start, cpu_start = time.monotonic(), time.process_time()
    display = console or Console(stderr=True)
    with Live(_panel(recorder, None, 0, options), console=display, auto_refresh=False) as live:
        runner.start(options.users, spawn_rate=options.spawn_rate)
        second = 1
        while second <= options.duration_s + 1e-9:
            gevent.sleep(max(0.0, start + second - time.monotonic()))
            tick = recorder.tick(second, runner.user_count)
            live.update(_panel(recorder, tick, second, options), refresh=True)
            second += 1
        elapsed = time.monotonic() - start
        remainder = options.duration_s - (second - 1)
        if remainder > 1e-9:
            gevent.sleep(max(0.0, start + options.duration_s - time.monotonic()))
            recorder.tick(options.duration_s, runner.user_count)
            elapsed = time.monotonic() - start
        cpu_s = time.process_time() - cpu_start
        recorder.closed = True
        runner.quit()
    if not display.is_terminal:
        display.line()  # a non-interactive Live ends without one; the summary starts on its own line
    return LoadResult(
        target=target,
        payloads=payloads,
        options=options,
        started_at=started_at,
        elapsed_s=elapsed,
        latencies_ms=tuple(recorder.latencies_ms),
        failures=recorder.failures,
        errors=dict(recorder.errors),
        ticks=tuple(recorder.ticks),
        generator_cpu_s=cpu_s,
    )
