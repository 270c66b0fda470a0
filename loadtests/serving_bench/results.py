"""What a benchmark run measured: plain dataclasses, written to JSON as they are."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from serving_bench.wrk import LoadResult


@dataclass(frozen=True)
class ColdStart:
    """Seconds from process start to readiness (the server's probe answering 200), per start."""

    ready_s: tuple[float, ...]
    first_predict_s: tuple[float, ...]
    """Seconds from process start to the first successful prediction, per start."""

    @property
    def median_ready_s(self) -> float:
        return statistics.median(self.ready_s)

    @property
    def median_first_predict_s(self) -> float:
        return statistics.median(self.first_predict_s)


@dataclass(frozen=True)
class Measurement:
    """One timed wrk run against one endpoint with one payload size."""

    rows_per_request: int
    load: LoadResult
    server_cpu_us_per_request: float
    """CPU time of the server's processes during the run, divided by the requests served."""
    load_average_1m: float
    """The machine's 1-minute load average when the run started (other work on the machine shows here)."""
    round_number: int = 1

    @property
    def rows_per_s(self) -> float:
        return self.load.requests_per_s * self.rows_per_request


@dataclass
class EndpointResult:
    """An endpoint's correctness gate and, if it passed, its measurements."""

    key: str
    path: str
    gate: str = "not run"
    """'passed', or why the endpoint was not timed."""
    measurements: list[Measurement] = field(default_factory=list)

    def runs(self, rows_per_request: int, connections: int) -> list[Measurement]:
        """Every timed run at this setting, one per round."""
        return [
            m
            for m in self.measurements
            if m.rows_per_request == rows_per_request and m.load.connections == connections
        ]

    def find(self, rows_per_request: int, connections: int) -> Measurement | None:
        """The run with the median throughput at this setting (the lower middle one of an even count)."""
        runs = sorted(self.runs(rows_per_request, connections), key=lambda m: m.load.requests_per_s)
        return runs[(len(runs) - 1) // 2] if runs else None

    def settings(self) -> list[tuple[int, int]]:
        """(rows per request, connections) pairs measured, in the order first measured."""
        return list(dict.fromkeys((m.rows_per_request, m.load.connections) for m in self.measurements))


@dataclass
class ServerResult:
    """Everything measured for one server."""

    key: str
    title: str
    versions: dict[str, str]
    command: list[str]
    cold_start: ColdStart | None = None
    endpoints: list[EndpointResult] = field(default_factory=list)
    error: str | None = None
    """Why the server could not be measured at all (did not install, start or become ready)."""

    def endpoint(self, key: str) -> EndpointResult | None:
        return next((e for e in self.endpoints if e.key == key), None)
