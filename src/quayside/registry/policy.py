"""A registered model's promotion policy, and how a load-test report is judged against it.

The policy names the stages and aliases that are *protected*: entering one needs a
load-test report of that version that

- tested the version's own package (its digest; for an image, the digest on its label),
- passes the policy's SLO as it stands now (judged again from the stored figures),
- is younger than ``max_report_age_s``,
- loaded at least ``min_users`` users for at least ``min_duration_s`` seconds,
- and, with ``require_image``, was run against the built image rather than the package.

With ``require_build`` it also needs a build record of that version (``quayside build``)
whose smoke test passed, of the version's own package, within the policy's ``budget``
(bounds on image size, cold start and first inference, judged again from the stored figures).

This module is pure: the store reads the policy, the reports and the build records inside
the transaction that moves a stage or an alias and calls :func:`judge`, :func:`judge_build`,
:func:`refusal` and :func:`build_refusal`; nothing here touches a database. A model without
a stored policy has :data:`DEFAULT_POLICY`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from quayside.errors import UsageError
from quayside.names import check_alias
from quayside.registry.stages import Stage, parse_stage
from quayside.slo import (
    Objective,
    ObjectiveResult,
    Verdict,
    evaluate,
    format_slo,
    parse_budget,
    parse_slo,
)

DAY_S = 86_400
PROTECTABLE_STAGES = (Stage.STAGING, Stage.PRODUCTION)
"""Stages a policy may protect: entering ``candidate`` or ``archived`` never needs a load test."""
MAX_PROTECTED = 32


@dataclass(frozen=True)
class PromotionPolicy:
    """What a version must show before it enters a protected stage or a protected alias moves to it."""

    protected_stages: tuple[str, ...] = (Stage.PRODUCTION.value,)
    protected_aliases: tuple[str, ...] = ()
    slo: str | None = None
    """Canonical SLO text (``p95_ms<=25,error_rate<=0.001``); None means no report can pass yet."""
    max_report_age_s: int = 7 * DAY_S
    min_users: int = 1
    min_duration_s: float = 10.0
    require_image: bool = False
    budget: str | None = None
    """Canonical budget text (``image_mb<=200,cold_start_s<=3``) a build is judged against; None: no bounds."""
    require_build: bool = False
    """Whether a protected move also needs a passing build record (smoke test passed, within the budget)."""
    updated_at: int | None = None
    """When the policy was last set (ms since the epoch); None for the default policy."""
    updated_by: str | None = None

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return parse_slo(self.slo) if self.slo else ()

    @property
    def budget_objectives(self) -> tuple[Objective, ...]:
        return parse_budget(self.budget) if self.budget else ()

    def protects_stage(self, stage: str) -> bool:
        return stage in self.protected_stages

    def protects_alias(self, alias: str) -> bool:
        return alias in self.protected_aliases

    def report_requirement(self) -> str:
        """``newer than 7 days against p95_ms<=25,error_rate<=0.001`` (and the shape and image rules)."""
        text = f"newer than {format_age(self.max_report_age_s)} against {self.slo or '(no SLO set)'}"
        if self.min_users > 1:
            text += f" with at least {self.min_users} users"
        if self.min_duration_s > 0:
            text += f" lasting at least {self.min_duration_s:g} s"
        if self.require_image:
            text += " of the built image"
        return text

    def build_requirement(self) -> str:
        """``smoke test passed, within budget image_mb<=200`` (``smoke test passed`` without a budget)."""
        return "smoke test passed" + (f", within budget {self.budget}" if self.budget else "")

    def requirement(self) -> str:
        """What a qualifying load-test report shows, and with ``require_build`` what a qualifying build shows."""
        text = self.report_requirement()
        if self.require_build:
            text += f", and a passing build ({self.build_requirement()})"
        return text

    def changed(self, change: PolicyChange) -> PromotionPolicy:
        """A copy with the fields ``change`` sets, each checked; a UsageError names a bad one."""
        values: dict[str, Any] = {}
        if change.protected_stages is not None:
            values["protected_stages"] = check_protected_stages(change.protected_stages)
        if change.protected_aliases is not None:
            values["protected_aliases"] = check_protected_aliases(change.protected_aliases)
        if change.slo is not None:
            values["slo"] = format_slo(parse_slo(change.slo)) if change.slo.strip() else None
        if change.max_report_age_s is not None:
            values["max_report_age_s"] = int(
                _check_number("max_report_age_s", change.max_report_age_s, 1, 3650 * DAY_S)
            )
        if change.min_users is not None:
            values["min_users"] = int(_check_number("min_users", change.min_users, 1, 1_000_000, whole=True))
        if change.min_duration_s is not None:
            values["min_duration_s"] = _check_number("min_duration_s", change.min_duration_s, 0, 30 * DAY_S)
        if change.require_image is not None:
            values["require_image"] = bool(change.require_image)
        if change.budget is not None:
            values["budget"] = format_slo(parse_budget(change.budget)) if change.budget.strip() else None
        if change.require_build is not None:
            values["require_build"] = bool(change.require_build)
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protected_stages": list(self.protected_stages),
            "protected_aliases": list(self.protected_aliases),
            "slo": self.slo,
            "max_report_age_s": self.max_report_age_s,
            "min_users": self.min_users,
            "min_duration_s": self.min_duration_s,
            "require_image": self.require_image,
            "budget": self.budget,
            "require_build": self.require_build,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromotionPolicy:
        return cls(
            protected_stages=tuple(data["protected_stages"]),
            protected_aliases=tuple(data["protected_aliases"]),
            slo=data.get("slo"),
            max_report_age_s=int(data["max_report_age_s"]),
            min_users=int(data["min_users"]),
            min_duration_s=float(data["min_duration_s"]),
            require_image=bool(data["require_image"]),
            budget=data.get("budget"),
            require_build=bool(data.get("require_build", False)),
            updated_at=data.get("updated_at"),
            updated_by=data.get("updated_by"),
        )


DEFAULT_POLICY = PromotionPolicy()


@dataclass(frozen=True)
class PolicyChange:
    """The fields of a policy to change: ``None`` keeps a field, ``slo=""`` clears the SLO (``budget=""`` the budget).

    What every layer passes down (the client builds it, REST carries :meth:`to_dict`, the
    store applies it with :meth:`PromotionPolicy.changed`).
    """

    protected_stages: Sequence[str] | None = None
    protected_aliases: Sequence[str] | None = None
    slo: str | None = None
    max_report_age_s: float | None = None
    min_users: int | None = None
    min_duration_s: float | None = None
    require_image: bool | None = None
    budget: str | None = None
    require_build: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, lists as lists (a JSON body)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: list(v) if isinstance(v, tuple | list) else v for k, v in values.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyChange:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


def check_protected_stages(stages: Iterable[str]) -> tuple[str, ...]:
    parsed = []
    for value in stages:
        stage = parse_stage(value)
        if stage not in PROTECTABLE_STAGES:
            choices = ", ".join(s.value for s in PROTECTABLE_STAGES)
            raise UsageError(f"stage '{stage.value}' cannot be protected: protect {choices}")
        if stage.value not in parsed:
            parsed.append(stage.value)
    return tuple(parsed)


def check_protected_aliases(aliases: Iterable[str]) -> tuple[str, ...]:
    checked: list[str] = []
    for alias in aliases:
        name = check_alias(str(alias).strip())
        if name not in checked:
            checked.append(name)
    if len(checked) > MAX_PROTECTED:
        raise UsageError(f"a policy protects at most {MAX_PROTECTED} aliases, not {len(checked)}")
    return tuple(checked)


def _check_number(name: str, value: Any, low: float, high: float, *, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{name} must be a number, not {value!r}")
    if whole and value != int(value):
        raise UsageError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise UsageError(f"{name} must be from {low:g} to {high:g}, not {value:g}")
    return float(value)


def format_age(seconds: float) -> str:
    """``7 days``, ``36 hours``, ``90 minutes``, ``45 s``: the largest unit that keeps a whole number."""
    for unit, size in (("day", DAY_S), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} s"


# --- judging reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFacts:
    """What the policy looks at in one stored report."""

    id: str
    package_digest: str
    tested_kind: str
    users: int
    duration_s: float
    started_at: int
    uploaded_at: int
    summary: Mapping[str, float | None]

    @property
    def taken_at(self) -> int:
        """When the figures were measured, at the latest: a report cannot be younger than its upload."""
        return min(self.started_at, self.uploaded_at)


@dataclass(frozen=True)
class Judgement:
    """A report against the policy in force: the SLO verdict and every reason it does not qualify."""

    verdict: Verdict | None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def qualifies(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "qualifies": self.qualifies,
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement | None:
        """The judgement in a record's ``to_dict`` (``verdict``, ``qualifies``, ``problems``); None if unjudged."""
        if data.get("qualifies") is None:
            return None
        verdict = None
        if data.get("verdict"):
            verdict = Verdict(
                tuple(
                    ObjectiveResult(
                        Objective(o["metric"], o["comparison"], float(o["required"])),
                        math.nan if o["measured"] is None else float(o["measured"]),
                        bool(o["passed"]),
                    )
                    for o in data["verdict"]["objectives"]
                )
            )
        return cls(verdict, tuple(data.get("problems") or ()))


def judge(policy: PromotionPolicy, report: ReportFacts, *, digest: str, now_ms: int) -> Judgement:
    """Judge one report of a version whose package has ``digest``, at time ``now_ms``."""
    objectives = policy.objectives
    numbers = {k: math.nan if v is None else float(v) for k, v in report.summary.items()}
    verdict = evaluate(objectives, numbers) if objectives else None
    problems: list[str] = []
    if verdict is None:
        problems.append("the policy has no SLO to judge it against")
    else:
        problems.extend(f"missed {r.objective} (measured {_measured(r.measured)})" for r in verdict.failed)
    if report.package_digest != digest:
        problems.append(f"it tested package {report.package_digest[:12]}, not this version's {digest[:12]}")
    age_s = (now_ms - report.taken_at) / 1000
    if age_s > policy.max_report_age_s:
        problems.append(
            f"it is {format_age(round(age_s))} old; the policy accepts {format_age(policy.max_report_age_s)}"
        )
    if report.users < policy.min_users:
        problems.append(f"it ran {report.users} users; the policy needs at least {policy.min_users}")
    if report.duration_s < policy.min_duration_s:
        problems.append(
            f"it ran {report.duration_s:g} s; the policy needs at least {policy.min_duration_s:g} s"
        )
    if policy.require_image and report.tested_kind != "image":
        problems.append(f"it tested the {report.tested_kind}; the policy requires the built image")
    return Judgement(verdict, tuple(problems))


def _measured(value: float) -> str:
    return "nothing" if math.isnan(value) else f"{value:g}"


def refusal(
    *,
    model: str,
    version: int,
    move: str,
    policy: PromotionPolicy,
    newest: tuple[ReportFacts, Judgement] | None,
    command: str,
) -> str:
    """The message of a refused move: what is missing, the newest report's problems, and what to run.

    ``move`` says what was asked (``enter production``, ``take alias 'champion'``).
    """
    subject = f"version {version} of '{model}'"
    if policy.slo is None:
        return (
            f"{subject} cannot {move}: the model's promotion policy has no SLO to judge a load test "
            f"against; set one with: quayside registry policy set {model} --slo 'p95_ms<=25,error_rate<=0.001'"
            f", then run {command}"
        )
    text = f"{subject} has no passing load test {policy.report_requirement()}, so it cannot {move}: run {command}"
    if newest is not None:
        facts, judgement = newest
        text += f" (its newest report, {facts.id}: {'; '.join(judgement.problems)})"
    return text


# --- judging builds -----------------------------------------------------------------------------

SMOKE_STATUSES = ("passed", "failed", "skipped")
"""What a build's smoke test came to: the image started and answered, it did not, or it was never run."""


@dataclass(frozen=True)
class BuildFacts:
    """What the policy looks at in one stored build record."""

    id: str
    package_digest: str
    smoke: str
    smoke_detail: str
    figures: Mapping[str, float | None]
    """``image_mb``, ``cold_start_s``, ``first_inference_ms``; None where nothing was measured."""


def judge_build(policy: PromotionPolicy, build: BuildFacts, *, digest: str) -> Judgement:
    """Judge one build record of a version whose package has ``digest``; the verdict is the budget's (None without one)."""
    objectives = policy.budget_objectives
    numbers = {k: math.nan if v is None else float(v) for k, v in build.figures.items()}
    verdict = evaluate(objectives, numbers) if objectives else None
    problems: list[str] = []
    if build.smoke == "failed":
        problems.append(f"its smoke test failed: {build.smoke_detail or 'no detail recorded'}")
    elif build.smoke != "passed":
        problems.append("it was built with --no-smoke, so it was never started")
    if build.package_digest != digest:
        problems.append(f"it holds package {build.package_digest[:12]}, not this version's {digest[:12]}")
    if verdict is not None:
        problems.extend(f"missed {r.objective} (measured {_measured(r.measured)})" for r in verdict.failed)
    return Judgement(verdict, tuple(problems))


def build_refusal(
    *,
    model: str,
    version: int,
    move: str,
    policy: PromotionPolicy,
    newest: tuple[BuildFacts, Judgement] | None,
) -> str:
    """The message of a move refused for want of a passing build: what is missing, the newest build's problems."""
    text = (
        f"version {version} of '{model}' has no passing build ({policy.build_requirement()}), so it cannot "
        f"{move}: run quayside build models:/{model}/{version}"
    )
    if newest is not None:
        facts, judgement = newest
        text += f" (its newest build, {facts.id}: {'; '.join(judgement.problems)})"
    return text
