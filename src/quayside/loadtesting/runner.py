"""Locust as a library: one process (a LocalRunner) or Locust's master and N local workers drive the users.

Latencies are kept per request (not Locust's rounded buckets), so the report's
percentiles are exact; each request is stamped with when it finished, and the
per-second time series is cut from those stamps. A Rich live panel on stderr shows the
last second and the totals while it runs. The users post over HTTP (:mod:`.users`) or
call ``ModelInfer`` over gRPC (:mod:`.grpc_users`), as the payloads' protocol says; both
report to the same recorder. With ``workers`` above 1 the users run in Locust's
distributed mode (:mod:`.distributed`): the workers send their requests to this
process's recorder inside Locust's own worker reports, so the report and the verdict
are built the same way.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable
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
    """How hard and how long: simulated users, users started per second, seconds of load, and
    how many load-generating processes (1: this one; more: Locust's master here and that many workers)."""

    users: int = 32
    spawn_rate: float = 8.0
    duration_s: float = 30.0
    workers: int = 1

    def __post_init__(self) -> None:
        if self.users < 1:
            raise UsageError(f"--users must be at least 1, not {self.users}")
        if self.spawn_rate <= 0:
            raise UsageError(f"--spawn-rate must be above 0, not {self.spawn_rate}")
        if self.duration_s <= 0:
            raise UsageError(f"--duration must be above 0 s, not {self.duration_s}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, not {self.workers}")
        if self.workers > self.users:
            raise UsageError(
                f"--workers {self.workers} is more than --users {self.users}: a worker would run no user"
            )


@dataclass(frozen=True)
class Tick:
    """One second of the time series: what finished in it, and how many users were running."""

    t: float
    users: int
    latencies_ms: tuple[float, ...]
    failures: int


@dataclass
class Recorder:
    """Collects every request, stamped with when it finished, and cuts them into one-second ticks.

    ``mark`` closes a second while load runs (and returns what arrived in it, for the live
    panel); :meth:`ticks` bins every request by its finish time once load is over, so that
    requests a worker reported a moment late still land in the second they finished in.
    """

    started_at: float = 0.0
    """Wall-clock time (``time.time()``) the load started; seconds are counted from it."""
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    closed: bool = False
    _finished: list[tuple[float, float, bool]] = field(default_factory=list)
    _marks: list[tuple[float, int]] = field(default_factory=list)
    _arrived: list[float] = field(default_factory=list)
    _arrived_failures: int = 0

    def on_request(self, response_time: float, exception: BaseException | None = None, **_: Any) -> None:
        """Locust's ``request`` event, in the process the users run in."""
        self.add(time.time(), float(response_time), None if exception is None else error_type(exception))

    def add(self, finished_at: float, latency_ms: float, error: str | None) -> None:
        """One request: when it finished, how long it took, and its failure type (None: it succeeded)."""
        if self.closed:
            return
        self.latencies_ms.append(latency_ms)
        self._finished.append((finished_at, latency_ms, error is not None))
        self._arrived.append(latency_ms)
        if error is not None:
            self.failures += 1
            self._arrived_failures += 1
            self.errors[error] += 1

    def mark(self, t: float, users: int) -> Tick:
        """Close second ``t`` (``users`` running at its end); returns what arrived since the last mark."""
        self._marks.append((round(t, 3), users))
        arrived = Tick(round(t, 3), users, tuple(self._arrived), self._arrived_failures)
        self._arrived, self._arrived_failures = [], 0
        return arrived

    def ticks(self) -> tuple[Tick, ...]:
        """Every request in the second it finished in; any that finished after the last mark go in the last."""
        if not self._marks:
            return ()
        bounds = [self.started_at + t for t, _ in self._marks]
        latencies: list[list[float]] = [[] for _ in bounds]
        failures = [0] * len(bounds)
        for finished_at, latency, failed in self._finished:
            index = min(bisect.bisect_left(bounds, finished_at), len(bounds) - 1)
            latencies[index].append(latency)
            failures[index] += failed
        return tuple(
            Tick(t, users, tuple(latencies[i]), failures[i]) for i, (t, users) in enumerate(self._marks)
        )

    def result(
        self,
        target: str,
        payloads: Payloads,
        options: LoadOptions,
        *,
        elapsed_s: float,
        generator_cpu_s: float,
        workers: tuple[WorkerFigures, ...] = (),
    ) -> LoadResult:
        """What this run recorded, as the :class:`LoadResult` a report is made from."""
        return LoadResult(
            target=target,
            payloads=payloads,
            options=options,
            started_at=self.started_at,
            elapsed_s=elapsed_s,
            latencies_ms=tuple(self.latencies_ms),
            failures=self.failures,
            errors=dict(self.errors),
            ticks=self.ticks(),
            generator_cpu_s=generator_cpu_s,
            workers=workers,
        )


def error_type(exception: BaseException) -> str:
    """How a failed request is grouped in the report."""
    # Failures marked by the user class carry their type as the message (HTTP 422 signature_error).
    if type(exception).__name__ == "CatchResponseError" or isinstance(exception, GrpcFailure):
        return str(exception)
    return type(exception).__name__


@dataclass(frozen=True)
class WorkerFigures:
    """One worker process of a distributed run: its request count as Locust's own worker reports
    gave it, and the CPU time it used while the load ran."""

    index: int
    pid: int
    requests: int
    failures: int
    cpu_s: float
    wall_s: float


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
    """CPU time this process (the only load generator, or Locust's master) used during the run: near
    ``elapsed_s`` means one core was saturated, and the figures then bound the generator as much as the server."""
    workers: tuple[WorkerFigures, ...] = ()
    """The worker processes of a distributed run; empty when this process ran the users itself."""


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


def user_class_for(payloads: Payloads, target: str) -> type:
    """The Locust user class for the payloads' protocol, aimed at ``target`` (checked first for gRPC)."""
    if payloads.protocol != "grpc":
        return user_class(payloads, target.rstrip("/"))
    from quayside.loadtesting.grpc_users import check_reachable, grpc_user_class

    users = grpc_user_class(payloads, target)  # puts grpc in gevent mode before the first channel
    check_reachable(target)
    return users


def drive(
    recorder: Recorder,
    options: LoadOptions,
    *,
    start: Callable[[], None],
    user_count: Callable[[], int],
    display: Console,
) -> float:
    """Start the users, mark each second of ``options.duration_s`` with a live panel; returns the seconds loaded.

    Sets ``recorder.started_at`` when ``start`` is called; the caller stops the users.
    """
    import gevent

    with Live(_panel(recorder, None, 0, options), console=display, auto_refresh=False) as live:
        recorder.started_at, start_mono = time.time(), time.monotonic()
        start()
        second = 1
        while second <= options.duration_s + 1e-9:
            gevent.sleep(max(0.0, start_mono + second - time.monotonic()))
            tick = recorder.mark(second, user_count())
            live.update(_panel(recorder, tick, second, options), refresh=True)
            second += 1
        remainder = options.duration_s - (second - 1)
        if remainder > 1e-9:
            gevent.sleep(max(0.0, start_mono + options.duration_s - time.monotonic()))
            recorder.mark(options.duration_s, user_count())
        elapsed = time.monotonic() - start_mono
    if not display.is_terminal:
        display.line()  # a non-interactive Live ends without one; the summary starts on its own line
    return elapsed


def run_load(
    target: str, payloads: Payloads, options: LoadOptions, *, console: Console | None = None
) -> LoadResult:
    """Load ``target`` with users sending the payloads for ``options.duration_s`` seconds.

    ``target`` is the server's base URL, or its gRPC address (HOST:PORT) for ``grpc`` payloads.
    With ``options.workers`` above 1, Locust's master runs here and the users in that many
    local worker processes (:func:`quayside.loadtesting.distributed.run_distributed`).
    """
    import_locust()
    display = console or Console(stderr=True)
    if options.workers > 1:
        from quayside.loadtesting.distributed import run_distributed

        return run_distributed(target, payloads, options, display=display)
    from locust.env import Environment

    recorder = Recorder()
    environment = Environment(user_classes=[user_class_for(payloads, target)])
    environment.events.request.add_listener(recorder.on_request)
    runner = environment.create_local_runner()
    cpu_start = time.process_time()
    elapsed = drive(
        recorder,
        options,
        start=lambda: runner.start(options.users, spawn_rate=options.spawn_rate),
        user_count=lambda: runner.user_count,
        display=display,
    )
    cpu_s = time.process_time() - cpu_start
    recorder.closed = True
    runner.quit()
    return recorder.result(target, payloads, options, elapsed_s=elapsed, generator_cpu_s=cpu_s)
