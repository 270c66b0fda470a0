"""The one experiment filter Quayside reads (MLflow's ``SearchExperiments``): ``name = | != | LIKE | ILIKE 'value'``.

Runs have a filter language of their own (:mod:`quayside.tracking.search`); experiments
are few and are filtered by name only, in Python, with a ``LIKE`` that cannot backtrack.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from quayside.errors import UsageError
from quayside.tracking.search import check_source

_NAME_FILTER = re.compile(
    r"^\s*(?:attributes?\.)?name\s*(=|!=|like|ilike)\s*(['\"])(.*)\2\s*$", re.IGNORECASE | re.DOTALL
)


def _excerpt(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def experiment_name_filter(filter_string: str) -> Callable[[str], bool]:
    """A predicate for the one experiment filter Quayside reads: ``name = | != | LIKE | ILIKE 'value'``."""
    if not filter_string.strip():
        return lambda _name: True
    check_source(filter_string, "experiment filter")
    match = _NAME_FILTER.match(filter_string)
    if match is None:
        raise UsageError(
            f"experiment filter {_excerpt(filter_string)!r} is not supported: Quayside reads only "
            "\"name = 'x'\", \"name != 'x'\", \"name LIKE 'x%'\" and \"name ILIKE 'x%'\""
        )
    op, value = match.group(1).lower(), match.group(3)
    if op == "=":
        return lambda name: name == value
    if op == "!=":
        return lambda name: name != value
    return like_matcher(value, ignore_case=op == "ilike")


def like_matcher(pattern: str, *, ignore_case: bool = False) -> Callable[[str], bool]:
    """SQL ``LIKE`` (``%`` any run, ``_`` one character) in time linear in pattern times name.

    A regular expression of ``.*`` pieces backtracks: ``'%a%a%a%a%a%b'`` against a long
    name of a's takes time exponential in the pattern. Matching the fixed pieces between
    ``%`` leftmost first is exact and cannot backtrack.
    """
    fold: Callable[[str], str] = str.casefold if ignore_case else str
    pieces = [fold(piece) for piece in pattern.split("%")]

    def piece_at(name: str, piece: str, start: int) -> bool:
        window = name[start : start + len(piece)]
        return len(window) == len(piece) and all(p in ("_", c) for p, c in zip(piece, window, strict=True))

    def matches(name: str) -> bool:
        name = fold(name)
        if len(pieces) == 1:
            return len(name) == len(pieces[0]) and piece_at(name, pieces[0], 0)
        first, *middle, last = pieces
        end = len(name) - len(last)
        if end < len(first) or not piece_at(name, first, 0) or not piece_at(name, last, end):
            return False
        position = len(first)
        for piece in middle:
            while position + len(piece) <= end and not piece_at(name, piece, position):
                position += 1
            if position + len(piece) > end:
                return False
            position += len(piece)
        return True

    return matches
