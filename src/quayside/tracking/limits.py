"""The bounds on what a search or a lookup may ask for: page sizes, offsets, experiment ids.

Checked by the store (so the Python API meets them) and by the client before a request
leaves (so a REST backend answers the same :class:`~quayside.errors.UsageError`); the
REST routes declare the same bounds in their schemas. A value past them would
otherwise reach the database driver, which cannot bind it (``OverflowError``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from quayside.errors import UsageError
from quayside.tracking.entities import INT64_MAX

MAX_RUNS_PER_PAGE = 10_000
"""Runs in one page of a run search."""
MAX_SEARCH_EXPERIMENTS = 1_000
"""Experiments one search may name: each is a bound value, and the filter's own stay within the rest."""
MAX_EXPERIMENT_ID = 2**31 - 1
"""Experiment ids are 32-bit INTEGER columns (on PostgreSQL): a larger id names no experiment."""
MAX_OFFSET = INT64_MAX
"""Offsets are 64-bit in both databases' LIMIT ... OFFSET."""


def check_page(max_results: int, offset: int) -> tuple[int, int]:
    """The page size and offset, if the databases can take them (and the page asks for something)."""
    max_results, offset = _whole("max results", max_results), _whole("offset", offset)
    if not 1 <= max_results <= MAX_RUNS_PER_PAGE:
        raise UsageError(f"max results must be between 1 and {MAX_RUNS_PER_PAGE}, not {max_results}")
    if not 0 <= offset <= MAX_OFFSET:
        raise UsageError(f"offset must be between 0 and {MAX_OFFSET}, not {offset}")
    return max_results, offset


def check_experiment_id(experiment_id: int) -> int:
    """The id, if it can name an experiment: a whole number that fits the id column."""
    experiment_id = _whole("an experiment id", experiment_id)
    if not 0 <= experiment_id <= MAX_EXPERIMENT_ID:
        raise UsageError(f"experiment id {experiment_id} is out of range (0 to {MAX_EXPERIMENT_ID})")
    return experiment_id


def check_experiment_ids(experiment_ids: Iterable[int]) -> list[int]:
    """The experiments a search names, within :data:`MAX_SEARCH_EXPERIMENTS`, each a possible id."""
    ids = list(experiment_ids)
    if len(ids) > MAX_SEARCH_EXPERIMENTS:
        raise UsageError(
            f"a search names at most {MAX_SEARCH_EXPERIMENTS} experiments, not {len(ids)}; "
            "name none to search them all"
        )
    return [check_experiment_id(i) for i in ids]


def _whole(what: str, value: Any) -> int:
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise UsageError(f"{what} must be a whole number, not {value!r}")
