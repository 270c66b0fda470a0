"""What the pages show, computed from domain objects: table columns, sort order, pages, differences.

Pure functions and small dataclasses, tested without a server; the routes gather the
data and the templates lay it out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from quayside.errors import UsageError
from quayside.registry.policy import DAY_S, PromotionPolicy, format_age
from quayside.tracking.entities import Run, RunKeys

PER_PAGE_CHOICES = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
DEFAULT_COLUMNS_PER_KIND = 4
SORTABLE_ATTRIBUTES = {"start_time": "Started", "end_time": "Ended", "name": "Name", "status": "Status"}
MIN_COMPARE, MAX_COMPARE = 2, 10


@dataclass(frozen=True)
class Column:
    """A param or metric shown as a runs-table column."""

    kind: str  # "metrics" | "params"
    key: str

    @property
    def ref(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def heading(self) -> str:
        return self.key

    def value(self, run: Run) -> Any:
        if self.kind == "params":
            return run.params.get(self.key)
        point = run.metrics.get(self.key)
        return None if point is None else point.value


def parse_column(ref: str) -> Column:
    kind, _, key = ref.partition(".")
    if kind not in ("metrics", "params") or not key:
        raise UsageError(f"column '{ref}' is not metrics.<key> or params.<key>")
    return Column(kind, key)


def choose_columns(selected: Sequence[str], keys: RunKeys) -> list[Column]:
    """The columns asked for, or the first few metrics and params when none are."""
    if selected:
        return [parse_column(ref) for ref in dict.fromkeys(selected)]
    metrics = [Column("metrics", key) for key in keys.metrics[:DEFAULT_COLUMNS_PER_KIND]]
    params = [Column("params", key) for key in keys.params[:DEFAULT_COLUMNS_PER_KIND]]
    return metrics + params


def order_by(sort: str, descending: bool) -> str:
    """The store's order-by clause for a sort column (a run attribute or ``metrics.``/``params.`` key)."""
    direction = "desc" if descending else "asc"
    if sort in SORTABLE_ATTRIBUTES:
        return f"{sort} {direction}"
    column = parse_column(sort)
    # Keys may hold spaces, dots and dashes; the filter language takes them quoted.
    return f'{column.kind}."{column.key}" {direction}'


@dataclass(frozen=True)
class Page:
    """Where a page sits in an ordered result of ``total`` rows."""

    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.per_page, self.total)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page(number: int, per_page: int, total: int) -> Page:
    """Page ``number`` (from 1) of ``total`` rows, moved onto the last page when past it."""
    if per_page not in PER_PAGE_CHOICES:
        raise UsageError(
            f"runs per page must be one of {', '.join(map(str, PER_PAGE_CHOICES))}, not {per_page}"
        )
    if number < 1:
        raise UsageError(f"page numbers start at 1, not {number}")
    last = max(1, math.ceil(total / per_page))
    return Page(min(number, last), per_page, total)


def url_with(base: str, params: Sequence[tuple[str, str]]) -> Callable[..., str]:
    """A function giving ``base`` with the current query changed: ``link(page=2)``, ``link(col=[...])``."""

    def link(**changes: Any) -> str:
        kept = [(k, v) for k, v in params if k not in changes]
        for key, value in changes.items():
            values = value if isinstance(value, list | tuple) else [value]
            kept.extend((key, str(v)) for v in values if v is not None and v != "")
        return f"{base}?{urlencode(kept)}" if kept else base

    return link


@dataclass(frozen=True)
class ComparedRow:
    """One param or metric across the compared runs; ``differs`` when not every run has the same value."""

    key: str
    values: tuple[Any, ...]
    differs: bool


def compare(runs: Sequence[Run], values_of: Callable[[Run], Mapping[str, Any]]) -> list[ComparedRow]:
    """Every key any run has, with each run's value (``None`` when missing), sorted by key."""
    tables = [values_of(run) for run in runs]
    keys = sorted({key for table in tables for key in table})
    rows = []
    for key in keys:
        values = tuple(table.get(key) for table in tables)
        rows.append(ComparedRow(key, values, len({_comparable(v) for v in values}) > 1))
    return rows


def _comparable(value: Any) -> Any:
    # NaN != NaN, but two runs that both logged NaN do not differ.
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def check_compare_count(run_ids: Sequence[str]) -> list[str]:
    ids = list(dict.fromkeys(run_ids))
    if not MIN_COMPARE <= len(ids) <= MAX_COMPARE:
        raise UsageError(f"choose {MIN_COMPARE} to {MAX_COMPARE} runs to compare, not {len(ids)}")
    return ids


# --- the promotion policy ---------------------------------------------------------------------


@dataclass(frozen=True)
class StageChoice:
    """A stage in a version's transition form, with the registry's refusal when the policy closes it now."""

    stage: str
    refusal: str | None = None


def stage_choices(current: str, stages: Sequence[str], blocked: Mapping[str, str]) -> list[StageChoice]:
    """Every stage but the current one; ``blocked`` is :meth:`RegistryStore.blocked_moves`' answer."""
    return [StageChoice(stage, blocked.get(stage)) for stage in stages if stage != current]


def alias_refusals(blocked: Mapping[str, str], held: Sequence[str]) -> dict[str, str]:
    """The protected aliases the version cannot take now (those it holds already left out), with why."""
    return {key[1:]: why for key, why in blocked.items() if key.startswith("@") and key[1:] not in held}


def promote_command(name: str, version: int | str, move: str = "production") -> str:
    """The command that runs the load test a protected move needs and makes the move.

    ``move`` is a stage or ``@alias``, as :meth:`RegistryStore.blocked_moves` names them.
    """
    command = f"quayside promote {name} {version}"
    if move.startswith("@"):
        return f"{command} --alias {move[1:]}"
    return command if move == "production" else f"{command} --to {move}"


@dataclass(frozen=True)
class PolicyFacts:
    """A promotion policy as the model page lists it, and the values its form starts from."""

    protected_stages: tuple[str, ...]
    protected_aliases: tuple[str, ...]
    slo: str | None
    max_age: str
    max_age_days: float
    min_users: int
    min_duration_s: float
    require_image: bool
    budget: str | None
    require_build: bool
    requirement: str
    updated_at: int | None
    updated_by: str | None


def policy_facts(policy: PromotionPolicy) -> PolicyFacts:
    return PolicyFacts(
        protected_stages=policy.protected_stages,
        protected_aliases=policy.protected_aliases,
        slo=policy.slo,
        max_age=format_age(policy.max_report_age_s),
        max_age_days=policy.max_report_age_s / DAY_S,
        min_users=policy.min_users,
        min_duration_s=policy.min_duration_s,
        require_image=policy.require_image,
        budget=policy.budget,
        require_build=policy.require_build,
        requirement=policy.requirement(),
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
    )


def describe_tested(tested: Mapping[str, Any]) -> str:
    """What a load test ran against: ``package``, ``image churn:3`` or ``server http://...``."""
    kind = str(tested.get("kind", "package"))
    where = tested.get("image") or tested.get("image_id") or tested.get("url")
    return f"{kind} {where}" if kind != "package" and where else kind


def build_size_mb(size_bytes: int) -> str:
    """An image size as ``image_mb`` measures it (10^6 bytes), for the builds table."""
    return f"{size_bytes / 1e6:.1f}"
