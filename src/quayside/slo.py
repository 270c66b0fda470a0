"""Objectives: ``"p95_ms<=25,p99_ms<=60,error_rate<=0.001,rps>=300"`` parsed and judged.

A bottom-layer module with one grammar for two kinds of bound: service-level objectives
on a load test's figures (:func:`parse_slo`: the registry's promotion policy and
``quayside loadtest --slo``) and budgets on a built image's figures (:func:`parse_budget`:
``quayside build --budget`` and the model's budget in the registry).

An objective names one measured quantity of a load-test report, a comparison and
a bound. :func:`parse_slo` turns the text into objectives (a malformed term is a
:class:`~quayside.errors.UsageError` naming it) and :func:`evaluate` compares them
with a report's summary, keeping measured and required values side by side.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from quayside.errors import UsageError

METRICS: dict[str, str] = {
    "p50_ms": "median latency (ms)",
    "p90_ms": "90th percentile latency (ms)",
    "p95_ms": "95th percentile latency (ms)",
    "p99_ms": "99th percentile latency (ms)",
    "max_ms": "slowest request (ms)",
    "mean_ms": "mean latency (ms)",
    "error_rate": "failed requests / requests",
    "rps": "requests per second",
}
"""Every quantity an objective may bound, and what it measures."""

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}

BUDGET_METRICS: dict[str, str] = {
    "image_mb": "image size (MB, 10^6 bytes, as docker images shows it)",
    "cold_start_s": "container start to ready (s)",
    "first_inference_ms": "latency of the first request after ready (ms)",
}
"""Every quantity a build budget may bound, and what it measures."""

_TERM = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(<=|>=|<|>)\s*([^\s<>=]+)\s*$")
SLO_HELP = (
    "Comma-separated objectives, e.g. 'p95_ms<=25,p99_ms<=60,error_rate<=0.001,rps>=300' "
    f"(metrics: {', '.join(METRICS)}; comparisons: <=, >=, <, >)."
)
BUDGET_HELP = (
    "Comma-separated bounds on the built image, e.g. 'image_mb<=200,cold_start_s<=3,first_inference_ms<=50' "
    f"(metrics: {', '.join(BUDGET_METRICS)}; comparisons: <=, >=, <, >)."
)


@dataclass(frozen=True)
class Objective:
    """One bound: ``metric comparison threshold``."""

    metric: str
    comparison: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.comparison}{self.threshold:g}"

    def holds_for(self, measured: float) -> bool:
        return not math.isnan(measured) and COMPARISONS[self.comparison](measured, self.threshold)


@dataclass(frozen=True)
class ObjectiveResult:
    objective: Objective
    measured: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": str(self.objective),
            "metric": self.objective.metric,
            "comparison": self.objective.comparison,
            "required": self.objective.threshold,
            "measured": None if math.isnan(self.measured) else self.measured,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Verdict:
    """Each objective with what was measured; passes only when every objective does."""

    results: tuple[ObjectiveResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[ObjectiveResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "objectives": [r.to_dict() for r in self.results]}


def _parse_term(term: str, metrics: Mapping[str, str], kind: str) -> Objective:
    match = _TERM.match(term)
    if match is None:
        raise UsageError(f"{kind} term '{term.strip()}' is malformed: write METRIC<=NUMBER or METRIC>=NUMBER")
    metric, comparison, raw = match.groups()
    if metric not in metrics:
        raise UsageError(
            f"{kind} term '{term.strip()}' names unknown metric '{metric}' (known: {', '.join(metrics)})"
        )
    try:
        threshold = float(raw)
    except ValueError:
        raise UsageError(f"{kind} term '{term.strip()}': '{raw}' is not a number") from None
    if not math.isfinite(threshold) or threshold < 0:
        raise UsageError(f"{kind} term '{term.strip()}': the bound must be a finite number >= 0")
    return Objective(metric, comparison, threshold)


def parse_objectives(
    text: str, metrics: Mapping[str, str], *, kind: str, help_text: str
) -> tuple[Objective, ...]:
    """``"METRIC<=N,METRIC>=N"`` over ``metrics`` as objectives; a malformed term is a UsageError naming it."""
    if not text or not text.strip():
        raise UsageError(f"the {kind} is empty. {help_text}")
    terms = text.split(",")
    for term in terms:
        if not term.strip():
            raise UsageError(f"{kind} '{text}' has an empty term (two commas, or a trailing comma)")
    return tuple(_parse_term(term, metrics, kind) for term in terms)


def parse_slo(text: str) -> tuple[Objective, ...]:
    """``"p95_ms<=25,rps>=300"`` as objectives; a malformed term is a UsageError naming it."""
    return parse_objectives(text, METRICS, kind="SLO", help_text=SLO_HELP)


def parse_budget(text: str) -> tuple[Objective, ...]:
    """``"image_mb<=200,cold_start_s<=3"`` as objectives on a built image's figures."""
    return parse_objectives(text, BUDGET_METRICS, kind="budget", help_text=BUDGET_HELP)


def evaluate(objectives: tuple[Objective, ...], summary: Mapping[str, float]) -> Verdict:
    """Judge a report summary (``{"p95_ms": ..., "rps": ..., ...}``) against the objectives."""
    results = []
    for objective in objectives:
        measured = float(summary.get(objective.metric, math.nan))
        results.append(ObjectiveResult(objective, measured, objective.holds_for(measured)))
    return Verdict(tuple(results))


def format_slo(objectives: tuple[Objective, ...]) -> str:
    """Objectives as the canonical text ``parse_slo`` reads back (``p95_ms<=25,error_rate<=0.001``)."""
    return ",".join(str(o) for o in objectives)
