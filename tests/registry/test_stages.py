"""The transitions table and its checks, without a database."""

from __future__ import annotations

import pytest

from quayside.errors import InvalidStateError, UsageError
from quayside.registry.stages import (
    TRANSITIONS,
    Stage,
    check_transition,
    parse_stage,
    resolve_actor,
)

ALLOWED = {
    ("candidate", "staging"),
    ("candidate", "archived"),
    ("staging", "production"),
    ("staging", "candidate"),
    ("staging", "archived"),
    ("production", "archived"),
    ("archived", "staging"),
}


def test_the_table_is_exactly_the_documented_lifecycle():
    table = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(Stage)


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_every_allowed_transition_passes(current: str, target: str):
    check_transition("iris", 1, Stage(current), Stage(target))


@pytest.mark.parametrize(
    ("current", "target"),
    sorted({(a.value, b.value) for a in Stage for b in Stage if a != b} - ALLOWED),
)
def test_every_other_move_is_refused_and_the_message_lists_the_allowed_ones(current: str, target: str):
    with pytest.raises(
        InvalidStateError, match=f"cannot move from {current} to {target}; from {current} it can move to"
    ):
        check_transition("iris", 4, Stage(current), Stage(target))


def test_a_move_to_the_same_stage_is_refused():
    with pytest.raises(InvalidStateError, match="version 2 of 'iris' is already in staging"):
        check_transition("iris", 2, Stage.STAGING, Stage.STAGING)


def test_stages_parse_in_any_case_and_an_unknown_one_is_named():
    assert parse_stage("Production") is Stage.PRODUCTION
    with pytest.raises(
        UsageError, match="unknown stage 'prod': stages are candidate, staging, production, archived"
    ):
        parse_stage("prod")


def test_the_actor_is_explicit_then_configured_then_the_os_user(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOGNAME", "os-user")
    monkeypatch.setenv("USER", "os-user")
    assert resolve_actor("alice", "ci-bot") == "alice"
    assert resolve_actor(None, "ci-bot") == "ci-bot"
    assert resolve_actor(None, None) == "os-user"
    assert resolve_actor("  ", None) == "os-user"
