"""Stages, the one table of allowed transitions, and who an audit entry names as the actor.

Every version starts as ``candidate``. The transitions below are the only ones the
registry makes; anything else is refused before anything changes::

    candidate ──► staging ──► production ──► archived
        │  ▲         │                          │
        │  └─────────┘ (back for more work)     │
        └──────────► archived ◄─────────────────┘
                       │
                       └──► staging (revived for another evaluation)

Only the one production rule lives in the store (it needs the other versions):
a model has at most one ``production`` version unless it allows several, and
promoting a version archives the current one unless ``keep_previous`` is asked for.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from enum import StrEnum

from quayside.errors import InvalidStateError, UsageError


class Stage(StrEnum):
    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


INITIAL_STAGE = Stage.CANDIDATE

TRANSITIONS: Mapping[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.CANDIDATE, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.STAGING}),
}


def parse_stage(value: str) -> Stage:
    """A stage by name (any case), or a 400 that lists the stages."""
    try:
        return Stage(str(value).strip().lower())
    except ValueError:
        raise UsageError(f"unknown stage '{value}': stages are {', '.join(s.value for s in Stage)}") from None


def check_transition(model: str, version: int, current: Stage, target: Stage) -> None:
    """Refuse a move the transitions table does not list, naming the moves that are allowed."""
    if current == target:
        raise InvalidStateError(f"version {version} of '{model}' is already in {target.value}")
    allowed = TRANSITIONS[current]
    if target not in allowed:
        choices = ", ".join(s.value for s in Stage if s in allowed)
        raise InvalidStateError(
            f"version {version} of '{model}' cannot move from {current.value} to {target.value}; "
            f"from {current.value} it can move to {choices}"
        )


def resolve_actor(explicit: str | None, configured: str | None) -> str:
    """Who the audit log names: the explicit actor, else ``QUAYSIDE_ACTOR``, else the OS user."""
    for candidate in (explicit, configured):
        if candidate is not None and candidate.strip():
            return check_actor(candidate.strip())
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER, e.g. in a bare container
        return "unknown"


def check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 256:
        raise UsageError(f"actor {actor!r} is invalid: use 1 to 256 characters")
    return actor
