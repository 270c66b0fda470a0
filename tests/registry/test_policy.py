"""The promotion gate, specified through every path into the registry: a protected move needs the registry's own verdict.

A protected stage (``production`` by default) or a protected alias takes a version only
with a load-test report the registry holds for that version and its package digest,
that meets the SLO in force now, is fresh, and ran the load the policy asks for, or an
admin's override. The rule is checked in the registry's store, so the client tests run
four ways (local or REST, SQLite or PostgreSQL); the raw HTTP tests show the answers a
caller of the API sees, and the auth tests who may override and who may set a policy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quayside import RegistryClient
from quayside.config import Settings
from quayside.errors import InvalidStateError, NotFoundError, PolicyError, UsageError
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.registry.policy import DAY_S, DEFAULT_POLICY, PolicyChange
from quayside.registry.store import RegistryStore
from tests.registry.conftest import unique
from tests.registry.reports import HTML, SLO, add_report, report_document
from tests.server.auth_fixtures import AuthServer, start_auth_server

PROMOTE = "quayside promote {name} {version}"
EVIDENCE_KEYS = {"loadtest_report", "slo", "figures", "tested", "users", "duration_s", "uploaded_by"}


def snapshot(registry: RegistryClient | RegistryStore, name: str) -> dict[str, Any]:
    """Everything a user can read about a model, to check that a refused move changed nothing."""
    return {
        "model": registry.get_model(name).to_dict(),
        "versions": [v.to_dict() for v in registry.list_versions(name, include_deleted=True)],
        "history": [e.to_dict() for e in registry.history(name)],
        "policy": registry.get_policy(name).to_dict(),
    }


def staged(
    registry: RegistryClient, packages: list[Path], count: int = 1, *, slo: str | None = SLO, **policy: Any
) -> str:
    """A model whose first ``count`` versions (distinct packages) are in staging, with a policy of ``SLO``."""
    name = unique()
    for number in range(count):
        registry.register_model(packages[number], name)
        registry.transition(name, number + 1, "staging")
    if slo is not None or policy:
        registry.set_policy(name, slo=slo, **policy)
    return name


# --- without a qualifying report, nothing moves --------------------------------------------------


def test_without_a_report_production_and_a_protected_alias_are_refused_and_nothing_changes(
    registry, packages
):
    name = staged(registry, packages, protected_aliases=["champion"])
    before = snapshot(registry, name)

    with pytest.raises(PolicyError) as refused:
        registry.transition(name, 1, "production", reason="trust me")
    message = str(refused.value)
    assert f"version 1 of '{name}' has no passing load test newer than 7 days against {SLO}" in message
    assert message.endswith(f"so it cannot enter production: run {PROMOTE.format(name=name, version=1)}")
    assert (refused.value.code, refused.value.http_status) == ("policy_not_met", 409)

    with pytest.raises(PolicyError, match="cannot take the protected alias 'champion'") as refused:
        registry.set_alias(name, "champion", 1, reason="trust me")
    assert str(refused.value).endswith(f"run quayside promote {name} 1 --alias champion")

    after = snapshot(registry, name)
    assert after == before
    assert registry.get_version(name, 1).stage == "staging" and registry.get_version(name, 1).aliases == ()
    assert len(registry.history(name)) == len(before["history"])
    with pytest.raises(NotFoundError):
        registry.get_version_by_alias(name, "champion")

    moved = registry.set_alias(name, "challenger", 1)  # an alias the policy does not protect moves freely
    assert moved.aliases == ("challenger",) and registry.history(name)[-1].evidence == {}


def test_without_an_slo_the_refusal_says_how_to_set_one(registry, packages):
    name = staged(registry, packages, slo=None)
    add_report(registry, name, 1)
    assert registry.get_policy(name) == DEFAULT_POLICY
    before = snapshot(registry, name)
    with pytest.raises(PolicyError) as refused:
        registry.transition(name, 1, "production")
    message = str(refused.value)
    assert "the model's promotion policy has no SLO to judge a load test against" in message
    assert (
        f"quayside registry policy set {name} --slo" in message
        and PROMOTE.format(name=name, version=1) in message
    )
    assert snapshot(registry, name) == before


def test_staging_is_open_until_the_policy_protects_it(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    registry.register_model(packages[1], name)
    registry.transition(name, 1, "staging")  # not protected by default
    registry.set_policy(name, slo=SLO, protected_stages=["staging", "production"])
    with pytest.raises(
        PolicyError, match=f"cannot enter staging: run quayside promote {name} 2 --to staging"
    ):
        registry.transition(name, 2, "staging")
    assert registry.get_version(name, 2).stage == "candidate"
    add_report(registry, name, 2)
    assert registry.transition(name, 2, "staging").stage == "staging"
    registry.set_policy(name, protected_stages=[])
    assert registry.get_policy(name).protected_stages == ()
    assert registry.transition(name, 1, "production").stage == "production"  # nothing is protected now


# --- with one, the move happens and the evidence is the registry's --------------------------------


def test_a_passing_fresh_report_clears_the_move_and_the_audit_entry_names_it(registry, packages):
    name = staged(registry, packages, protected_aliases=["champion"])
    report = add_report(registry, name, 1, p95_ms=12.5)
    assert report.passed is True and report.judgement.qualifies

    moved = registry.transition(name, 1, "production", reason="load test passed")
    assert moved.stage == "production"
    entry = registry.history(name)[-1]
    assert (entry.action, entry.to_value, entry.override, entry.reason) == (
        "transition",
        "production",
        False,
        "load test passed",
    )
    digest = registry.get_version(name, 1).digest
    assert entry.evidence == {
        "loadtest_report": report.id,
        "slo": SLO,
        "figures": {"p95_ms": 12.5, "error_rate": 0.0},
        "tested": {"kind": "package", "package_digest": digest},
        "users": 8,
        "duration_s": 30.0,
        "uploaded_by": "tester",
    }

    aliased = registry.set_alias(name, "champion", 1)
    assert aliased.aliases == ("champion",)
    alias_entry = registry.history(name)[-1]
    assert alias_entry.action == "alias_set" and alias_entry.evidence["loadtest_report"] == report.id


def test_the_newest_qualifying_report_is_the_one_named(registry, packages):
    name = staged(registry, packages)
    import time

    older = add_report(registry, name, 1, started_at=time.time() - 3600)
    newer = add_report(registry, name, 1, started_at=time.time() - 60)
    add_report(registry, name, 1, p95_ms=99.0)  # newest, but failing: the one before it still clears
    assert [r.id for r in registry.loadtest_reports(name, 1)][1:] == [newer.id, older.id]
    registry.transition(name, 1, "production")
    assert registry.history(name)[-1].evidence["loadtest_report"] == newer.id


def test_an_uploaded_verdict_of_pass_does_not_count_when_the_figures_break_the_slo(registry, packages):
    name = staged(registry, packages)
    document = report_document(registry.get_version(name, 1).digest, p95_ms=90.0)
    document["verdict"] = {"passed": True, "objectives": [{"metric": "p95_ms", "passed": True}]}
    document["summary"]["error_rate"] = 0.0

    report = registry.add_loadtest_report(name, 1, document, HTML)

    assert report.passed is False and not report.judgement.qualifies
    assert report.judgement.problems == ("missed p95_ms<=25 (measured 90)",)
    before = snapshot(registry, name)
    with pytest.raises(
        PolicyError, match=rf"its newest report, {report.id}: missed p95_ms<=25 \(measured 90\)"
    ):
        registry.transition(name, 1, "production")
    assert snapshot(registry, name) == before


def _digest_of_version_2(registry: RegistryClient, name: str) -> dict[str, Any]:
    return {"digest": registry.get_version(name, 2).digest}


REFUSED = [
    pytest.param({}, {"p95_ms": 90.0}, "missed p95_ms<=25 (measured 90)", id="failing-latency"),
    pytest.param({}, {"failures": 30}, "missed error_rate<=0.001 (measured 0.01)", id="failing-errors"),
    pytest.param({}, {"requests": 0}, "missed error_rate<=0.001 (measured 1)", id="no-requests"),
    pytest.param({"min_users": 10}, {}, "it ran 8 users; the policy needs at least 10", id="too-few-users"),
    pytest.param({"min_duration_s": 60}, {}, "it ran 30 s; the policy needs at least 60 s", id="too-short"),
    pytest.param(
        {"require_image": True},
        {},
        "it tested the package; the policy requires the built image",
        id="package-not-image",
    ),
    pytest.param({}, _digest_of_version_2, "it tested package", id="another-versions-digest"),
]


@pytest.mark.parametrize(("policy", "report", "problem"), REFUSED)
def test_a_report_that_does_not_qualify_is_refused_and_says_why(registry, packages, policy, report, problem):
    name = staged(registry, packages, 2, protected_aliases=["champion"], **policy)
    figures = report(registry, name) if callable(report) else report
    stored = add_report(registry, name, 1, **figures)
    assert not stored.judgement.qualifies and problem in "; ".join(stored.judgement.problems)
    before = snapshot(registry, name)

    with pytest.raises(PolicyError) as refused:
        registry.transition(name, 1, "production")
    assert problem in str(refused.value) and f"its newest report, {stored.id}" in str(refused.value)
    assert PROMOTE.format(name=name, version=1) in str(refused.value)
    with pytest.raises(PolicyError, match="cannot take the protected alias 'champion'"):
        registry.set_alias(name, "champion", 1)
    assert snapshot(registry, name) == before


def test_the_digest_refusal_names_both_packages(registry, packages):
    name = staged(registry, packages, 2)
    first, second = (registry.get_version(name, v).digest for v in (1, 2))
    add_report(registry, name, 1, digest=second)
    with pytest.raises(
        PolicyError, match=f"it tested package {second[:12]}, not this version's {first[:12]}"
    ):
        registry.transition(name, 1, "production")


def test_a_report_of_another_version_does_not_clear_this_one(registry, packages):
    name = staged(registry, packages, 2)
    other = add_report(registry, name, 2)
    before = snapshot(registry, name)
    with pytest.raises(PolicyError) as refused:
        registry.transition(name, 1, "production")
    assert other.id not in str(refused.value) and "its newest report" not in str(refused.value)
    assert snapshot(registry, name) == before
    assert registry.transition(name, 2, "production").stage == "production"


def test_the_built_image_qualifies_where_the_policy_requires_it(registry, packages):
    name = staged(registry, packages, require_image=True)
    add_report(registry, name, 1)
    image = add_report(registry, name, 1, kind="image")
    registry.transition(name, 1, "production")
    evidence = registry.history(name)[-1].evidence
    assert evidence["loadtest_report"] == image.id and evidence["tested"]["kind"] == "image"


def test_the_slo_in_force_now_judges_the_stored_figures(registry, packages):
    name = staged(registry, packages, 2)
    report = add_report(registry, name, 1, p95_ms=8.0)
    assert report.passed is True

    registry.set_policy(name, slo="p95_ms<=5,error_rate<=0.001", reason="tighter")
    (judged,) = registry.loadtest_reports(name, 1)
    assert judged.passed is False and judged.judgement.problems == ("missed p95_ms<=5 (measured 8)",)
    before = snapshot(registry, name)
    with pytest.raises(PolicyError, match=r"missed p95_ms<=5 \(measured 8\)"):
        registry.transition(name, 1, "production")
    assert snapshot(registry, name) == before

    registry.set_policy(name, slo="p95_ms<=10", reason="looser")
    assert registry.transition(name, 1, "production").stage == "production"
    evidence = registry.history(name)[-1].evidence
    assert (evidence["loadtest_report"], evidence["slo"], evidence["figures"]) == (
        report.id,
        "p95_ms<=10",
        {"p95_ms": 8.0},
    )


# --- the age of a report, by a clock the test controls ------------------------------------------


@pytest.fixture
def clocked(database_url: str, tmp_path: Path) -> tuple[RegistryStore, list[float]]:
    """A local store on SQLite and on PostgreSQL whose clock is ``now[0]`` (seconds), moved by the test."""
    import time

    now = [time.time()]
    return RegistryStore(database_url, tmp_path / "artifacts", clock=lambda: now[0]), now


def _staged_store(store: RegistryStore, packages: list[Path], count: int = 1, **policy: Any) -> str:
    name = unique()
    for number in range(count):
        store.register_version(name, packages[number], actor="tester")
        store.transition(name, number + 1, "staging", actor="tester")
    store.set_policy(name, PolicyChange(slo=SLO, **policy), actor="tester")
    return name


def _upload(store: RegistryStore, name: str, version: int, **kwargs: Any):
    document = report_document(store.get_version(name, version).digest, **kwargs)
    return store.add_loadtest_report(name, version, document, HTML, actor="tester")


def test_a_report_older_than_the_policy_allows_is_refused(clocked, packages):
    store, now = clocked
    name = _staged_store(store, packages)
    report = _upload(store, name, 1, started_at=now[0])
    assert store.blocked_moves(name, 1) == {}

    now[0] += 7 * DAY_S + 3600
    assert set(store.blocked_moves(name, 1)) == {"production"}
    before = snapshot(store, name)
    with pytest.raises(PolicyError) as refused:
        store.transition(name, 1, "production", actor="tester")
    assert f"its newest report, {report.id}: it is 169 hours old; the policy accepts 7 days" in str(
        refused.value
    )
    assert snapshot(store, name) == before

    store.set_policy(name, PolicyChange(max_report_age_s=8 * DAY_S), actor="tester")
    assert store.transition(name, 1, "production", actor="tester").stage == "production"


def test_a_report_cannot_look_fresher_than_its_upload(clocked, packages):
    store, now = clocked
    name = _staged_store(store, packages, max_report_age_s=3600)
    _upload(store, name, 1, started_at=now[0] + 30 * DAY_S)  # a clock in the report that runs ahead
    now[0] += 2 * 3600
    with pytest.raises(PolicyError, match="it is 2 hours old; the policy accepts 1 hour"):
        store.transition(name, 1, "production", actor="tester")
    assert store.get_version(name, 1).stage == "staging"


def test_a_fresh_report_uploaded_after_a_stale_one_clears_the_move(clocked, packages):
    store, now = clocked
    name = _staged_store(store, packages)
    _upload(store, name, 1, started_at=now[0])
    now[0] += 10 * DAY_S
    with pytest.raises(PolicyError):
        store.transition(name, 1, "production", actor="tester")
    fresh = _upload(store, name, 1, started_at=now[0])
    store.transition(name, 1, "production", actor="tester")
    assert store.history(name)[-1].evidence["loadtest_report"] == fresh.id


# --- overrides ------------------------------------------------------------------------------------


def test_an_override_needs_a_reason_and_is_marked_with_the_actor_and_the_refusal(local_sqlite, packages):
    store = RegistryStore.from_settings(local_sqlite.settings)
    name = _staged_store(store, packages, protected_aliases=["champion"])
    before = snapshot(store, name)
    for reason in ("", "   "):
        with pytest.raises(UsageError, match="an override of the promotion policy needs a reason"):
            store.transition(name, 1, "production", actor="root", override=True, reason=reason)
        with pytest.raises(UsageError, match="needs a reason"):
            store.set_alias(name, "champion", 1, actor="root", override=True, reason=reason)
    assert snapshot(store, name) == before

    moved = store.transition(name, 1, "production", actor="root", override=True, reason="incident 42")
    assert moved.stage == "production"
    entry = store.history(name)[-1]
    assert (entry.action, entry.to_value, entry.override, entry.actor, entry.reason) == (
        "transition",
        "production",
        True,
        "root",
        "incident 42",
    )
    assert entry.evidence["override"] is True and entry.evidence["slo"] == SLO
    assert f"version 1 of '{name}' has no passing load test" in entry.evidence["policy_refused"]
    assert "loadtest_report" not in entry.evidence

    store.set_alias(name, "champion", 1, actor="root", override=True, reason="incident 42")
    alias_entry = store.history(name)[-1]
    assert alias_entry.action == "alias_set" and alias_entry.override is True
    assert "cannot take the protected alias 'champion'" in alias_entry.evidence["policy_refused"]


def test_an_override_the_report_made_unnecessary_is_not_marked(local_sqlite, packages):
    store = RegistryStore.from_settings(local_sqlite.settings)
    name = _staged_store(store, packages)
    report = _upload(store, name, 1)
    store.transition(name, 1, "production", actor="root", override=True, reason="belt and braces")
    entry = store.history(name)[-1]
    assert entry.override is False and entry.evidence["loadtest_report"] == report.id


def test_an_override_on_an_unprotected_move_changes_nothing_about_it(registry, packages):
    name = staged(registry, packages)
    registry.set_alias(name, "challenger", 1, override=True, reason="no need")
    entry = registry.history(name)[-1]
    assert entry.override is False and entry.evidence == {}


def test_an_override_does_not_skip_the_transitions_table(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    with pytest.raises(InvalidStateError, match="cannot move from candidate to production"):
        registry.transition(name, 1, "production", override=True, reason="skip staging")
    assert registry.get_version(name, 1).stage == "candidate"


# --- the policy itself ------------------------------------------------------------------------------


def test_every_policy_change_is_in_the_history_with_before_and_after(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    default = registry.get_policy(name)
    assert default.to_dict() == {
        "protected_stages": ["production"],
        "protected_aliases": [],
        "slo": None,
        "max_report_age_s": 7 * DAY_S,
        "min_users": 1,
        "min_duration_s": 10.0,
        "require_image": False,
        "budget": None,
        "require_build": False,
        "updated_at": None,
        "updated_by": None,
    }

    first = registry.set_policy(name, slo=" p95_ms <= 25 , error_rate<=0.001 ", reason="launch")
    second = registry.set_policy(
        name, protected_aliases=["champion"], min_users=4, min_duration_s=60, max_report_age_s=DAY_S
    )
    assert first.slo == SLO  # canonical text
    assert second.slo == SLO and second.protected_aliases == ("champion",) and second.min_users == 4
    assert second.updated_by == "tester" and second.updated_at is not None
    assert registry.get_policy(name) == second

    entries = [e for e in registry.history(name) if e.action == "policy_set"]
    assert [(e.version, e.actor, e.reason) for e in entries] == [
        (None, "tester", "launch"),
        (None, "tester", ""),
    ]
    assert entries[0].evidence["before"]["slo"] is None and entries[0].evidence["after"]["slo"] == SLO
    assert entries[1].evidence["before"] == {**entries[0].evidence["after"]}
    assert entries[1].evidence["after"] == {
        "protected_stages": ["production"],
        "protected_aliases": ["champion"],
        "slo": SLO,
        "max_report_age_s": DAY_S,
        "min_users": 4,
        "min_duration_s": 60.0,
        "require_image": False,
        "budget": None,
        "require_build": False,
    }

    cleared = registry.set_policy(name, slo="")
    assert cleared.slo is None and registry.history(name)[-1].evidence["after"]["slo"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protected_stages": ["candidate"]}, "stage 'candidate' cannot be protected"),
        ({"protected_stages": ["gold"]}, "unknown stage 'gold'"),
        ({"protected_aliases": ["bad alias"]}, "alias 'bad alias' is invalid"),
        ({"slo": "p95<=fast"}, "SLO term 'p95<=fast' names unknown metric 'p95'"),
        ({"max_report_age_s": 0}, "max_report_age_s must be from"),
        ({"min_users": 0}, "min_users must be from"),
        ({"min_duration_s": -1}, "min_duration_s must be from"),
    ],
)
def test_a_bad_policy_is_a_usage_error_and_changes_nothing(registry, packages, change, message):
    name = staged(registry, packages)
    before = snapshot(registry, name)
    with pytest.raises(UsageError, match=message):
        registry.set_policy(name, **change)
    assert snapshot(registry, name) == before


def test_the_retired_slo_tag_is_refused_with_the_command_that_replaces_it(registry):
    with pytest.raises(
        UsageError, match=r"'quayside\.slo' tag is no longer read.*quayside registry policy set"
    ):
        registry.create_model(unique(), tags={"quayside.slo": SLO})
    name = unique()
    registry.create_model(name)
    with pytest.raises(UsageError, match=r"'quayside\.slo' tag is no longer read"):
        registry.update_model(name, tags={"quayside.slo": SLO})
    assert "quayside.slo" not in registry.get_model(name).tags


def test_blocked_moves_say_why_each_protected_move_is_closed(local_sqlite, packages):
    store = RegistryStore.from_settings(local_sqlite.settings)
    name = _staged_store(store, packages, protected_aliases=["champion"])
    blocked = store.blocked_moves(name, 1)
    assert set(blocked) == {"production", "@champion"}
    assert blocked["production"].endswith(f"run quayside promote {name} 1")
    assert blocked["@champion"].endswith(f"run quayside promote {name} 1 --alias champion")
    _upload(store, name, 1)
    assert store.blocked_moves(name, 1) == {}


# --- report uploads -------------------------------------------------------------------------------


def test_a_report_of_an_unknown_or_deleted_version_is_refused(registry, packages):
    name = staged(registry, packages, 2)
    digest = registry.get_version(name, 2).digest
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 9"):
        registry.add_loadtest_report(name, 9, report_document(digest), HTML)
    with pytest.raises(NotFoundError, match="no registered model named"):
        registry.add_loadtest_report(unique("nope"), 1, report_document(digest), HTML)
    registry.transition(name, 2, "candidate")
    registry.delete_version(name, 2)
    with pytest.raises(InvalidStateError, match=f"version 2 of '{name}' is deleted"):
        registry.add_loadtest_report(name, 2, report_document(digest), HTML)
    assert registry.loadtest_reports(name, 2) == []


# --- the REST API, raw -------------------------------------------------------------------------------


def _api(target) -> httpx.Client:
    return httpx.Client(base_url=f"{target.settings.tracking_uri}/api/registry", timeout=30)


def _raw_state(http: httpx.Client, name: str) -> tuple[Any, ...]:
    return tuple(
        http.get(path).json()
        for path in (
            f"/models/{name}",
            f"/models/{name}/versions",
            f"/models/{name}/history",
            f"/models/{name}/policy",
        )
    )


def test_the_rest_api_answers_409_policy_not_met_and_changes_nothing(rest_sqlite, packages):
    registry = rest_sqlite.registry(actor="tester")
    name = staged(registry, packages, protected_aliases=["champion"])
    with _api(rest_sqlite) as http:
        before = _raw_state(http, name)
        for method, path, body, move in (
            ("POST", f"/models/{name}/versions/1/transition", {"stage": "production"}, "enter production"),
            (
                "PUT",
                f"/models/{name}/aliases/champion",
                {"version": 1},
                "take the protected alias 'champion'",
            ),
        ):
            answer = http.request(method, path, json=body | {"reason": "raw"})
            assert answer.status_code == 409, answer.text
            error = answer.json()["error"]
            assert error["code"] == "policy_not_met"
            assert f"cannot {move}: run quayside promote {name} 1" in error["message"]
        assert _raw_state(http, name) == before


def test_evidence_or_a_verdict_in_a_request_has_no_effect(rest_sqlite, packages):
    registry = rest_sqlite.registry(actor="tester")
    name = staged(registry, packages, 2)
    forged = {"loadtest_report": "made-up", "slo": "p95_ms<=100000", "passed": True}
    with _api(rest_sqlite) as http:
        # A failing report that says it passed: the registry's verdict is its own.
        document = report_document(registry.get_version(name, 1).digest, p95_ms=500.0)
        document["verdict"] = {"passed": True, "objectives": []}
        uploaded = http.post(
            f"/models/{name}/versions/1/loadtests",
            json={"report": document, "html": HTML, "verdict": {"passed": True}, "passed": True},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["passed"] is False and uploaded.json()["qualifies"] is False

        before = _raw_state(http, name)
        refused = http.post(
            f"/models/{name}/versions/1/transition",
            json={"stage": "production", "evidence": forged, "verdict": {"passed": True}},
        )
        assert refused.status_code == 409, refused.text
        assert _raw_state(http, name) == before

        passing = add_report(registry, name, 2)
        moved = http.post(
            f"/models/{name}/versions/2/transition",
            json={"stage": "production", "evidence": forged, "verdict": {"passed": False}},
        )
        assert moved.status_code == 200, moved.text
    entry = registry.history(name)[-1]
    assert set(entry.evidence) == EVIDENCE_KEYS
    assert entry.evidence["loadtest_report"] == passing.id and entry.evidence["slo"] == SLO


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"users": None}, "'users'"),
        ({"summary": None}, "'summary'"),
        ({"tested": None}, "'tested'"),
        ({"timeseries": None}, "'timeseries'"),
        ({"tested": {"kind": "package"}}, "'tested.package_digest'"),
        ({"duration_s": "long"}, "'duration_s'"),
    ],
)
def test_a_bad_report_upload_is_a_400_naming_the_field(rest_sqlite, packages, change, named):
    registry = rest_sqlite.registry(actor="tester")
    name = staged(registry, packages)
    document = report_document(registry.get_version(name, 1).digest) | change
    with _api(rest_sqlite) as http:
        answer = http.post(f"/models/{name}/versions/1/loadtests", json={"report": document, "html": HTML})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "bad_request"
        assert named in answer.json()["error"]["message"]
        assert http.get(f"/models/{name}/versions/1/loadtests").json() == {"reports": []}


def test_a_report_upload_to_a_missing_version_is_a_404_and_a_malformed_body_a_400(rest_sqlite, packages):
    registry = rest_sqlite.registry(actor="tester")
    name = staged(registry, packages)
    document = report_document(registry.get_version(name, 1).digest)
    with _api(rest_sqlite) as http:
        for path in (
            f"/models/{name}/versions/7/loadtests",
            f"/models/{unique('nope')}/versions/1/loadtests",
        ):
            answer = http.post(path, json={"report": document, "html": HTML})
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "not_found"
        for body in ({"report": document}, {"html": HTML}, {"report": "text", "html": HTML}):
            answer = http.post(f"/models/{name}/versions/1/loadtests", json=body)
            assert answer.status_code == 400, answer.text
        answer = http.get(f"/models/{name}/versions/1/loadtests/..%2F..%2Fpackages")
        assert answer.status_code in (400, 404), answer.text
        assert http.get(f"/models/{name}/versions/1/loadtests").json() == {"reports": []}


# --- with auth on: who may override, who may set the policy --------------------------------------


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    server = start_auth_server(tmp_path_factory.mktemp("policy-auth"), default_permission="none")
    for user in ("manager", "editor"):
        server.add_user(user)
    try:
        yield server
    finally:
        server.stop()


def _as(auth: AuthServer, user: str, home: Path) -> RegistryClient:
    return RegistryClient(settings=Settings(home=home / user, tracking_uri=auth.url, token=auth.tokens[user]))


@pytest.fixture
def guarded(auth: AuthServer, packages, tmp_path) -> str:
    """A model the admin registered, in staging, with an SLO and a protected alias; manager and editor granted."""
    admin = _as(auth, "admin", tmp_path)
    name = staged(admin, packages, protected_aliases=["champion"])
    auth.grant("manager", Resource(ResourceKind.MODEL, name), Level.MANAGE)
    auth.grant("editor", Resource(ResourceKind.MODEL, name), Level.EDIT)
    return name


@pytest.mark.parametrize("move", ["transition", "alias"])
def test_with_auth_only_an_admin_overrides_and_the_entry_names_the_admin(auth, guarded, tmp_path, move):
    name = guarded
    admin = _as(auth, "admin", tmp_path)

    def ask(user: str) -> httpx.Response:
        with auth.api(user) as http:
            body = {"reason": "incident 42", "override": True}
            if move == "transition":
                return http.post(
                    f"/api/registry/models/{name}/versions/1/transition", json=body | {"stage": "production"}
                )
            return http.put(f"/api/registry/models/{name}/aliases/champion", json=body | {"version": 1})

    before = snapshot(admin, name)
    refused = ask("manager")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "only an admin may override the promotion policy" in refused.json()["error"]["message"]
    with pytest.raises(PolicyError):  # and without the override, the policy refuses the manager
        if move == "transition":
            _as(auth, "manager", tmp_path).transition(name, 1, "production")
        else:
            _as(auth, "manager", tmp_path).set_alias(name, "champion", 1)
    assert snapshot(admin, name) == before

    moved = ask("admin")
    assert moved.status_code == 200, moved.text
    entry = admin.history(name)[-1]
    assert (entry.override, entry.actor, entry.reason) == (True, "admin", "incident 42")
    assert "policy_refused" in entry.evidence and entry.evidence["override"] is True


def test_with_auth_the_manager_promotes_with_a_report_and_the_entry_names_the_manager(
    auth, guarded, tmp_path
):
    manager = _as(auth, "manager", tmp_path)
    report = add_report(_as(auth, "editor", tmp_path), guarded, 1)  # edit may upload reports
    assert report.uploaded_by == "editor"
    manager.transition(guarded, 1, "production")
    entry = manager.history(guarded)[-1]
    assert (entry.actor, entry.override) == ("manager", False)
    assert entry.evidence["loadtest_report"] == report.id and entry.evidence["uploaded_by"] == "editor"


def test_with_auth_setting_the_policy_needs_manage(auth, guarded, tmp_path):
    admin = _as(auth, "admin", tmp_path)
    before = snapshot(admin, guarded)
    with auth.api("editor") as http:
        refused = http.patch(f"/api/registry/models/{guarded}/policy", json={"slo": "p99_ms<=100000"})
        assert refused.status_code == 403, refused.text
        assert "needs manage" in refused.json()["error"]["message"]
        assert http.get(f"/api/registry/models/{guarded}/policy").json()["slo"] == SLO  # read is allowed
    assert snapshot(admin, guarded) == before

    changed = _as(auth, "manager", tmp_path).set_policy(guarded, min_users=2, reason="more load")
    assert changed.min_users == 2 and changed.updated_by == "manager"
    entry = admin.history(guarded)[-1]
    assert (entry.action, entry.actor, entry.reason) == ("policy_set", "manager", "more load")
    assert (entry.evidence["before"]["min_users"], entry.evidence["after"]["min_users"]) == (1, 2)


# --- two promotions at once ----------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(3))
def test_two_promotions_of_one_model_at_once_leave_one_version_in_production(
    database_url, tmp_path, packages, round_
):
    artifacts = tmp_path / "artifacts"
    setup = RegistryStore(database_url, artifacts)
    name = _staged_store(setup, packages, 2)
    reports = {v: _upload(setup, name, v).id for v in (1, 2)}
    start = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def promote(version: int) -> None:
        store = RegistryStore(database_url, artifacts)
        start.wait(timeout=30)
        try:
            store.transition(name, version, "production", actor=f"racer-{version}")
            outcomes[version] = "ok"
        except Exception as e:  # reported below, with its type
            outcomes[version] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=promote, args=(v,)) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes == {1: "ok", 2: "ok"}, outcomes
    stages = {v.version: v.stage for v in setup.list_versions(name)}
    assert sorted(stages.values()) == ["archived", "production"], stages
    winner = next(v for v, stage in stages.items() if stage == "production")
    loser = 3 - winner
    moves = [e for e in setup.history(name) if e.action == "transition" and e.from_value != "candidate"]
    # The second promotion archives the first in its own transaction, before its own entry.
    assert [(e.version, e.from_value, e.to_value) for e in moves] == [
        (loser, "staging", "production"),
        (loser, "production", "archived"),
        (winner, "staging", "production"),
    ]
    promotion = {e.version: e for e in moves if e.to_value == "production"}
    assert promotion[winner].id > promotion[loser].id  # the later promotion is the one that stands
    assert {v: e.evidence["loadtest_report"] for v, e in promotion.items()} == reports
    archived = next(e for e in moves if e.to_value == "archived")
    assert (
        archived.reason == f"replaced in production by version {winner}"
        and archived.actor == f"racer-{winner}"
    )
