"""The issues' targets for the serving benchmark, checked against one run's results.

Issue 21 (fast at every load): in every cell of the matrix (rows per request ×
connections) Quayside's requests/s at least the hand-written floor's (a) and its
p99 at most the floor's, within the 5 % this machine's noise allows; single-row
throughput at the most connections at least 1.5× the floor's; batching on never
more than 5 % below batching off. Issue 5: at the most connections, 10× BentoML's
(b) and 50× MLflow's (c) single-row throughput; cold start at most 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving_bench.results import Measurement, ServerResult

THROUGHPUT_GOALS = {"handwritten": 1.5, "bentoml": 10.0, "mlflow": 50.0}
NOISE = 0.05
"""How far a same-run ratio may sit on the wrong side of 1 and still count as met (2 shared cores)."""
COLD_START_GOAL_S = 2.0
TOKEN_COST = 0.03
"""Issue 15: the bearer-token check costs at most 3 % of single-row throughput at the most connections."""
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
    targets += _matrix_targets(by_key, connections, payload_rows)
    token = by_key.get("quayside-token")
    if token is not None:
        for endpoint in QUAYSIDE_ENDPOINTS:
            value = _throughput(
                _first_measurement(token, endpoint, 1, top), _first_measurement(quayside, endpoint, 1, top)
            )
            goal = 1 - TOKEN_COST
            targets.append(
                Target(
                    f"{endpoint}: 1-row req/s at {top} conns, with the token check vs without",
                    value,
                    f"≥ {goal:.2f}×",
                    None if value is None else value >= goal,
                )
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


def _ratio_target(name: str, value: float | None, *, at_least: bool) -> Target:
    if at_least:
        return Target(name, value, f"≥ {1 - NOISE:.2f}×", None if value is None else value >= 1 - NOISE)
    return Target(name, value, f"≤ {1 + NOISE:.2f}×", None if value is None else value <= 1 + NOISE)


def _p99(ours: Measurement | None, theirs: Measurement | None) -> float | None:
    if ours is None or theirs is None or not theirs.load.p99_ms:
        return None
    return ours.load.p99_ms / theirs.load.p99_ms


def _matrix_targets(
    by_key: dict[str, ServerResult], connections: tuple[int, ...], payload_rows: tuple[int, ...]
) -> list[Target]:
    """Issue 21: every cell against the floor, and batching on against batching off."""
    quayside, floor, off = by_key.get("quayside"), by_key.get("handwritten"), by_key.get("quayside-nobatch")
    targets: list[Target] = []
    for endpoint in QUAYSIDE_ENDPOINTS:
        for rows in payload_rows:
            for c in connections:
                ours = _first_measurement(quayside, endpoint, rows, c)
                theirs = _first_measurement(floor, None, rows, c)
                unbatched = _first_measurement(off, endpoint, rows, c)
                cell = f"{endpoint}: {rows}-row at {c} conns"
                targets.append(
                    _ratio_target(f"{cell}, req/s vs floor", _throughput(ours, theirs), at_least=True)
                )
                targets.append(_ratio_target(f"{cell}, p99 vs floor", _p99(ours, theirs), at_least=False))
                if off is not None:
                    targets.append(
                        _ratio_target(
                            f"{cell}, req/s batching on vs off", _throughput(ours, unbatched), at_least=True
                        )
                    )
    return targets
