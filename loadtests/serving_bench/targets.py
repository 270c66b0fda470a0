"""The issue's targets for the serving benchmark, checked against one run's results.

Quayside's single-row throughput at 64 connections must be at least 1.3× the
hand-written endpoint's (a), 10× BentoML's (b) and 50× MLflow's (c); its p99
at or below (a)'s; its cold start (process start → ready) at most 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving_bench.results import Measurement, ServerResult

THROUGHPUT_GOALS = {"handwritten": 1.3, "bentoml": 10.0, "mlflow": 50.0}
COLD_START_GOAL_S = 2.0
QUAYSIDE_ENDPOINTS = ("v2", "invocations")


@dataclass(frozen=True)
class Target:
    """One target: what was compared, the measured value, the goal, and whether it was met."""

    name: str
    measured: float | None
    goal: str
    met: bool | None
    """None when one side of the comparison was not measured."""
    unit: str = "×"

    @property
    def shortfall(self) -> str:
        """How far a missed target is from its goal, in words."""
        if self.met is not False or self.measured is None:
            return ""
        return f"missed: {self.measured:.2f}{self.unit} against {self.goal}"


def _first_measurement(
    server: ServerResult | None, endpoint: str | None, rows: int, connections: int
) -> Measurement | None:
    if server is None:
        return None
    candidates = [server.endpoint(endpoint)] if endpoint else server.endpoints
    for e in candidates:
        found = e.find(rows, connections) if e else None
        if found:
            return found
    return None


def _throughput(quayside: Measurement | None, other: Measurement | None) -> float | None:
    if quayside is None or other is None or not other.load.requests_per_s:
        return None
    return quayside.load.requests_per_s / other.load.requests_per_s


def serving_targets(
    results: list[ServerResult], connections: tuple[int, ...], payload_rows: tuple[int, ...]
) -> list[Target]:
    """Every target the issue names, for each Quayside endpoint."""
    by_key = {r.key: r for r in results}
    quayside = by_key.get("quayside")
    targets: list[Target] = []
    top = max(connections)
    for endpoint in QUAYSIDE_ENDPOINTS:
        ours = _first_measurement(quayside, endpoint, 1, top)
        for key, goal in THROUGHPUT_GOALS.items():
            value = _throughput(ours, _first_measurement(by_key.get(key), None, 1, top))
            met = None if value is None else value >= goal
            targets.append(
                Target(f"{endpoint}: 1-row req/s at {top} conns vs {key}", value, f"≥ {goal:g}×", met)
            )
    handwritten = by_key.get("handwritten")
    for endpoint in QUAYSIDE_ENDPOINTS:
        for rows in payload_rows:
            for c in connections:
                ours = _first_measurement(quayside, endpoint, rows, c)
                theirs = _first_measurement(handwritten, None, rows, c)
                value = (
                    ours.load.p99_ms / theirs.load.p99_ms if ours and theirs and theirs.load.p99_ms else None
                )
                met = None if value is None else value <= 1.0
                targets.append(
                    Target(f"{endpoint}: p99 {rows}-row at {c} conns vs handwritten", value, "≤ 1×", met)
                )
    cold = quayside.cold_start if quayside else None
    cold_value = cold.median_ready_s if cold else None
    targets.append(
        Target(
            "cold start (process start → ready), median",
            cold_value,
            f"≤ {COLD_START_GOAL_S:g} s",
            None if cold_value is None else cold_value <= COLD_START_GOAL_S,
            unit=" s",
        )
    )
    return targets
