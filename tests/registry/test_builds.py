"""Build records and the build budget: what ``quayside build`` records, judged by the policy in force, and the gate.

A record is the document ``quayside build`` sends after building and smoke-testing an
image of a registered version (tests/registry/builds.py states the figures; no Docker
here). The registry checks it, binds it to the version's package, and judges it against
the model's budget whenever it is read; with ``require_build`` a protected stage or alias
needs a passing one. The client tests run four ways (local or REST, SQLite or PostgreSQL).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from quayside import RegistryClient
from quayside.errors import InvalidStateError, NotFoundError, PolicyError, UsageError
from quayside.registry.builds import BUILD_ID_PATTERN, BuildRecord, check_build_document
from quayside.registry.policy import (
    DEFAULT_POLICY,
    BuildFacts,
    PolicyChange,
    PromotionPolicy,
    build_refusal,
    judge_build,
)
from quayside.registry.store import RegistryStore
from tests.registry.builds import BUDGET, IMAGE_ID, REPO_DIGEST, add_build, build_document
from tests.registry.conftest import unique
from tests.registry.reports import HTML, SLO, add_report, report_document

GOOD_DIGEST = "e" * 64


@pytest.fixture
def store(local_sqlite) -> RegistryStore:
    return RegistryStore.from_settings(local_sqlite.settings)


def registered(store: RegistryStore, packages: list[Path], count: int = 1) -> str:
    name = unique()
    for number in range(count):
        store.register_version(name, packages[number % len(packages)], actor="tester")
    return name


def staged(registry: RegistryClient, packages: list[Path], **policy: Any) -> str:
    """A model whose version 1 is in staging with a passing load-test report, and a policy of ``SLO``."""
    name = unique()
    registry.register_model(packages[0], name)
    registry.transition(name, 1, "staging")
    registry.set_policy(name, slo=SLO, **policy)
    add_report(registry, name, 1)
    return name


# --- records ---------------------------------------------------------------------------------------


def test_a_build_is_recorded_listed_and_read_back_on_every_target(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    digest = registry.get_version(name, 1).digest
    document = build_document(digest, repo_digest=REPO_DIGEST, budget=" image_mb <= 200 ", built_at=1_000)

    recorded = registry.add_build_record(name, 1, document)

    assert BUILD_ID_PATTERN.fullmatch(recorded.id)
    assert (recorded.model, recorded.version, recorded.package_digest, recorded.recorded_by) == (
        name,
        1,
        digest,
        "tester",
    )
    assert (recorded.tag, recorded.image_id, recorded.size_bytes, recorded.repo_digest) == (
        "quayside/iris:1",
        IMAGE_ID,
        123_456_789,
        REPO_DIGEST,
    )
    assert (recorded.smoke, recorded.cold_start_s, recorded.first_inference_ms) == ("passed", 1.8, 12.5)
    assert recorded.budget == "image_mb<=200"  # canonical text
    assert (recorded.built_at, recorded.base_image, recorded.quayside_version) == (
        1_000,
        "quayside/python:3.11-bookworm",
        "0.1.0",
    )
    assert recorded.reference == REPO_DIGEST
    assert recorded.figures() == {"image_mb": 123.456789, "cold_start_s": 1.8, "first_inference_ms": 12.5}
    assert recorded.passed is True and recorded.judgement.verdict is None  # no budget in the policy

    assert registry.build_records(name, 1) == [recorded]
    again = registry.build_record(name, 1, recorded.id)
    assert again == recorded and again.judgement == recorded.judgement
    assert registry.build_records(name, 1)[0].to_dict() == recorded.to_dict()


def test_a_record_round_trips_through_its_dict_with_its_judgement():
    policy = DEFAULT_POLICY.changed(PolicyChange(budget="image_mb<=100,first_inference_ms<=10"))
    record = BuildRecord(
        id="b1",
        model="iris",
        version=3,
        package_digest=GOOD_DIGEST,
        tag="quayside/iris:3",
        image_id=IMAGE_ID,
        size_bytes=231_400_000,
        base_image="quayside/python:3.11-bookworm",
        quayside_version="0.1.0",
        repo_digest=None,
        smoke="skipped",
        cold_start_s=None,
        first_inference_ms=None,
        smoke_detail="built with --no-smoke",
        budget=None,
        built_at=5,
        recorded_at=6,
        recorded_by="ci",
    )
    judged = BuildRecord.from_dict(record.to_dict())
    assert judged == record and judged.judgement is None and judged.passed is None
    record = replace(record, judgement=judge_build(policy, record.facts(), digest=GOOD_DIGEST))

    copy = BuildRecord.from_dict(record.to_dict())

    assert copy == record and copy.judgement == record.judgement
    assert copy.to_dict() == record.to_dict()
    assert record.reference == "quayside/iris:3"
    assert copy.to_dict()["problems"] == [
        "it was built with --no-smoke, so it was never started",
        "missed image_mb<=100 (measured 231.4)",
        "missed first_inference_ms<=10 (measured nothing)",
    ]
    assert math.isnan(copy.judgement.verdict.results[1].measured)


def test_builds_are_listed_newest_first_and_judged_against_the_budget_in_force(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    now = int(time.time() * 1000)
    big = add_build(registry, name, 1, size_bytes=231_400_000, built_at=now - 2000)
    small = add_build(registry, name, 1, size_bytes=150_000_000, cold_start_s=4.5, built_at=now - 1000)

    assert [b.id for b in registry.build_records(name, 1)] == [small.id, big.id]
    assert all(b.passed for b in registry.build_records(name, 1))  # no budget: a passed smoke test is enough

    registry.set_policy(name, budget="image_mb<=200")
    listed = registry.build_records(name, 1)
    assert [(b.id, b.passed) for b in listed] == [(small.id, True), (big.id, False)]
    assert listed[1].judgement.problems == ("missed image_mb<=200 (measured 231.4)",)
    assert listed[1].judgement.verdict.to_dict()["objectives"][0]["measured"] == 231.4

    registry.set_policy(name, budget=BUDGET)
    judged = {b.id: b.judgement.problems for b in registry.build_records(name, 1)}
    assert judged == {
        small.id: ("missed cold_start_s<=3 (measured 4.5)",),
        big.id: ("missed image_mb<=200 (measured 231.4)",),
    }
    assert registry.build_record(name, 1, big.id).budget is None  # what it was built against stays

    registry.set_policy(name, budget="")
    assert registry.get_policy(name).budget is None
    assert all(b.passed for b in registry.build_records(name, 1))


def test_a_failed_or_skipped_smoke_test_never_passes(store, packages):
    name = registered(store, packages)
    digest = store.get_version(name, 1).digest
    failed = store.add_build_record(
        name, 1, build_document(digest, smoke="failed", detail="V2 answered 500"), actor="ci"
    )
    skipped = store.add_build_record(name, 1, build_document(digest, smoke="skipped"), actor="ci")
    assert failed.judgement.problems == ("its smoke test failed: V2 answered 500",)
    assert skipped.judgement.problems == ("it was built with --no-smoke, so it was never started",)
    assert (skipped.cold_start_s, skipped.first_inference_ms) == (None, None)


def test_records_belong_to_their_version_and_go_with_the_model(store, packages):
    name = registered(store, packages, 2)
    first = store.add_build_record(name, 1, build_document(store.get_version(name, 1).digest), actor="ci")
    assert store.build_records(name, 2) == []
    with pytest.raises(NotFoundError, match=f"model '{name}' version 2 has no build '{first.id}'"):
        store.build_record(name, 2, first.id)
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 7"):
        store.build_records(name, 7)
    with pytest.raises(UsageError, match=r"build id '\.\./x' is invalid"):
        store.build_record(name, 1, "../x")

    store.delete_model(name, actor="tester")
    store.register_version(name, packages[0], actor="tester")  # a new model under the same name
    assert store.build_records(name, 1) == []


# --- refused documents -------------------------------------------------------------------------------


def test_a_build_of_another_package_is_refused_saying_which_package_the_image_holds(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    own = registry.get_version(name, 1).digest
    with pytest.raises(UsageError) as refused:
        add_build(registry, name, 1, digest=GOOD_DIGEST)
    assert str(refused.value) == (
        f"the image quayside/iris:1 holds package {GOOD_DIGEST[:12]}, not version 1 of '{name}' "
        f"(package {own[:12]}): build models:/{name}/1 to record a build of it"
    )
    assert refused.value.http_status == 400
    assert registry.build_records(name, 1) == []


def test_a_build_of_a_deleted_or_unknown_version_is_refused(store, packages):
    name = registered(store, packages, 2)
    digest = store.get_version(name, 2).digest
    store.delete_version(name, 2, actor="tester")
    with pytest.raises(InvalidStateError, match=f"version 2 of '{name}' is deleted"):
        store.add_build_record(name, 2, build_document(digest), actor="ci")
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 5"):
        store.add_build_record(name, 5, build_document(digest), actor="ci")
    with pytest.raises(NotFoundError, match="no registered model named"):
        store.add_build_record(unique("nope"), 1, build_document(digest), actor="ci")


def _without(document: dict[str, Any], dotted: str) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    target = document
    for key in parents:
        target = target[key]
    del target[leaf]
    return document


@pytest.mark.parametrize(
    "missing",
    ["package_digest", "tag", "image_id", "size_bytes", "base_image", "quayside_version", "smoke",
     "smoke.status", "built_at"],
)  # fmt: skip
def test_a_document_missing_a_field_is_a_400_naming_it_and_stores_nothing(store, packages, missing):
    name = registered(store, packages)
    document = _without(build_document(store.get_version(name, 1).digest), missing)
    with pytest.raises(UsageError, match=f"^the build record .*'{missing}'") as refused:
        store.add_build_record(name, 1, document, actor="ci")
    assert refused.value.http_status == 400
    assert store.build_records(name, 1) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"package_digest": "ABC"}, "field 'package_digest' must be a package's sha256"),
        ({"image_id": "ab" * 32}, "field 'image_id' must be sha256:<64 hex digits>"),
        ({"size_bytes": 0}, "field 'size_bytes' must be a whole number from 1"),
        ({"size_bytes": 1.5}, "field 'size_bytes' must be a whole number"),
        ({"size_bytes": True}, "has no number 'size_bytes'"),
        ({"size_bytes": "big"}, "has no number 'size_bytes'"),
        ({"built_at": -1}, "field 'built_at' must be a whole number from 0"),
        ({"tag": "a b"}, "field 'tag' must not hold spaces"),
        ({"tag": "x" * 513}, "field 'tag' is 513 characters long; the limit is 512"),
        ({"base_image": ""}, "has no text 'base_image'"),
        ({"quayside_version": "1" * 65}, "field 'quayside_version' is 65 characters long"),
        ({"repo_digest": "127.0.0.1:5000/iris:1"}, "field 'repo_digest' must be REPOSITORY@sha256:"),
        ({"repo_digest": "@sha256:" + "0" * 64}, "field 'repo_digest' must be REPOSITORY@sha256:"),
        ({"budget": "image_gb<=1"}, "field 'budget' is not a budget: budget term 'image_gb<=1' names unknown"),
        ({"budget": 200}, "field 'budget' must be budget text"),
        ({"smoke": "fine"}, "has no 'smoke' object"),
        ({"smoke": {"status": "great"}}, "field 'smoke.status' must be one of passed, failed, skipped"),
        ({"smoke": {"status": "passed", "first_inference_ms": 2.0}}, "says the smoke test passed but gives no"),
        ({"smoke": {"status": "failed", "cold_start_s": -1}}, "field 'smoke.cold_start_s' must be from 0"),
        ({"smoke": {"status": "failed", "first_inference_ms": "12"}}, "field 'smoke.first_inference_ms' must be a number"),
        ({"smoke": {"status": "failed", "detail": 5}}, "field 'smoke.detail' must be text"),
        ({"smoke": {"status": "failed", "detail": "x" * 4001}}, "field 'smoke.detail' is 4001 characters long"),
    ],
)  # fmt: skip
def test_a_document_with_a_wrong_field_is_a_400_naming_it(store, packages, change, named):
    name = registered(store, packages)
    document = build_document(store.get_version(name, 1).digest) | change
    with pytest.raises(UsageError, match=f"^the build record {re.escape(named)}"):
        store.add_build_record(name, 1, document, actor="ci")
    assert store.build_records(name, 1) == []


def test_a_document_that_is_not_an_object_is_refused():
    with pytest.raises(UsageError, match="the build record of version 1 of 'iris' must be a JSON object"):
        check_build_document([1, 2], model="iris", version=1)


def test_a_failed_smoke_test_may_have_no_timings_and_no_detail():
    document = build_document(GOOD_DIGEST, smoke="failed", cold_start_s=None, first_inference_ms=None)
    del document["smoke"]["detail"]
    checked = check_build_document(document, model="iris", version=1)
    assert (checked.smoke, checked.cold_start_s, checked.smoke_detail) == ("failed", None, "")


# --- judging, purely --------------------------------------------------------------------------------


def test_judge_build_lists_every_problem_and_keeps_the_budget_verdict():
    policy = PromotionPolicy(budget="image_mb<=200,first_inference_ms<=50")
    facts = BuildFacts(
        id="b9",
        package_digest="1" * 64,
        smoke="failed",
        smoke_detail="no answer in 60 s",
        figures={"image_mb": 231.4, "cold_start_s": None, "first_inference_ms": None},
    )
    judgement = judge_build(policy, facts, digest="2" * 64)
    assert judgement.problems == (
        "its smoke test failed: no answer in 60 s",
        "it holds package 111111111111, not this version's 222222222222",
        "missed image_mb<=200 (measured 231.4)",
        "missed first_inference_ms<=50 (measured nothing)",
    )
    assert judgement.verdict is not None and not judgement.verdict.passed
    assert judge_build(DEFAULT_POLICY, facts, digest="1" * 64).verdict is None

    refused = build_refusal(
        model="iris", version=1, move="enter production", policy=policy, newest=(facts, judgement)
    )
    assert refused.startswith(
        "version 1 of 'iris' has no passing build (smoke test passed, within budget "
        "image_mb<=200,first_inference_ms<=50), so it cannot enter production: run quayside build models:/iris/1 "
        "(its newest build, b9: its smoke test failed: no answer in 60 s; "
    )


def test_a_policy_without_the_new_keys_reads_as_no_budget_and_no_build_required():
    old = {k: v for k, v in DEFAULT_POLICY.to_dict().items() if k not in ("budget", "require_build")}
    assert PromotionPolicy.from_dict(old) == DEFAULT_POLICY
    assert PromotionPolicy.from_dict(DEFAULT_POLICY.to_dict()) == DEFAULT_POLICY


def test_the_requirement_names_the_build_only_when_one_is_required():
    policy = PromotionPolicy(slo=SLO, budget="image_mb<=200")
    assert "build" not in policy.requirement()
    required = PromotionPolicy(slo=SLO, budget="image_mb<=200", require_build=True)
    assert required.requirement() == (
        f"newer than 7 days against {SLO} lasting at least 10 s, "
        "and a passing build (smoke test passed, within budget image_mb<=200)"
    )
    assert PromotionPolicy(require_build=True).build_requirement() == "smoke test passed"


# --- the policy's budget ---------------------------------------------------------------------------


def test_the_budget_and_require_build_are_kept_in_the_policy_and_its_history(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    policy = registry.set_policy(
        name, budget=" image_mb <= 200 , cold_start_s<=3 ", require_build=True, reason="slim"
    )
    assert (policy.budget, policy.require_build) == (BUDGET, True)
    assert registry.get_policy(name) == policy
    assert policy.to_dict()["budget"] == BUDGET and policy.to_dict()["require_build"] is True

    entry = registry.history(name)[-1]
    assert (entry.action, entry.reason) == ("policy_set", "slim")
    assert (entry.evidence["before"]["budget"], entry.evidence["before"]["require_build"]) == (None, False)
    assert (entry.evidence["after"]["budget"], entry.evidence["after"]["require_build"]) == (BUDGET, True)

    with pytest.raises(UsageError, match="budget term 'size<=3' names unknown metric 'size'"):
        registry.set_policy(name, budget="size<=3")
    with pytest.raises(UsageError, match="budget term 'p95_ms<=3' names unknown metric"):
        registry.set_policy(name, budget="p95_ms<=3")  # an SLO metric is no budget metric
    assert registry.get_policy(name) == policy

    cleared = registry.set_policy(name, budget="", require_build=False)
    assert (cleared.budget, cleared.require_build) == (None, False)


# --- the gate ----------------------------------------------------------------------------------------


def test_require_build_refuses_production_without_a_passing_build_then_lets_it_in(registry, packages):
    name = staged(registry, packages, budget="image_mb<=200", require_build=True)
    with pytest.raises(PolicyError) as refused:
        registry.transition(name, 1, "production")
    assert str(refused.value) == (
        f"version 1 of '{name}' has no passing build (smoke test passed, within budget image_mb<=200), so it "
        f"cannot enter production: run quayside build models:/{name}/1"
    )
    assert registry.get_version(name, 1).stage == "staging"

    big = add_build(registry, name, 1, size_bytes=231_400_000)
    with pytest.raises(PolicyError) as refused:
        registry.transition(name, 1, "production")
    assert str(refused.value).endswith(
        f"run quayside build models:/{name}/1 (its newest build, {big.id}: missed image_mb<=200 (measured 231.4))"
    )

    good = add_build(registry, name, 1, size_bytes=150_000_000, repo_digest=REPO_DIGEST)
    add_build(
        registry, name, 1, smoke="failed", detail="boom"
    )  # newer, failing: the passing one still counts
    assert registry.transition(name, 1, "production").stage == "production"

    entry = registry.history(name)[-1]
    assert (entry.action, entry.to_value, entry.override) == ("transition", "production", False)
    assert entry.evidence["build"] == {
        "id": good.id,
        "image_id": IMAGE_ID,
        "repo_digest": REPO_DIGEST,
        "tag": "quayside/iris:1",
    }
    assert entry.evidence["loadtest_report"] and entry.evidence["slo"] == SLO  # the report still counts


def test_without_require_build_a_build_is_not_needed_and_not_in_the_evidence(registry, packages):
    name = staged(registry, packages, budget="image_mb<=1")
    add_build(registry, name, 1)  # over budget, but no build is required
    assert registry.transition(name, 1, "production").stage == "production"
    assert "build" not in registry.history(name)[-1].evidence


def test_the_load_test_is_still_judged_first(registry, packages):
    name = unique()
    registry.register_model(packages[0], name)
    registry.transition(name, 1, "staging")
    registry.set_policy(name, slo=SLO, require_build=True)
    add_build(registry, name, 1)
    with pytest.raises(PolicyError, match="has no passing load test"):
        registry.transition(name, 1, "production")


def test_require_build_guards_a_protected_alias_too(registry, packages):
    name = staged(registry, packages, protected_aliases=["champion"], require_build=True)
    with pytest.raises(PolicyError) as refused:
        registry.set_alias(name, "champion", 1)
    assert str(refused.value) == (
        f"version 1 of '{name}' has no passing build (smoke test passed), so it cannot take the protected "
        f"alias 'champion': run quayside build models:/{name}/1"
    )
    with pytest.raises(NotFoundError):
        registry.get_version_by_alias(name, "champion")

    build = add_build(registry, name, 1)
    assert registry.set_alias(name, "champion", 1).aliases == ("champion",)
    entry = registry.history(name)[-1]
    assert (entry.action, entry.alias) == ("alias_set", "champion")
    assert entry.evidence["build"] == {
        "id": build.id,
        "image_id": IMAGE_ID,
        "repo_digest": None,
        "tag": "quayside/iris:1",
    }


def test_an_override_still_moves_a_version_without_a_build(store, packages):
    name = registered(store, packages)
    store.transition(name, 1, "staging", actor="tester")
    store.set_policy(name, PolicyChange(slo=SLO, require_build=True), actor="tester")
    store.add_loadtest_report(name, 1, report_document(store.get_version(name, 1).digest), HTML, actor="t")
    with pytest.raises(UsageError, match="an override of the promotion policy needs a reason"):
        store.transition(name, 1, "production", actor="admin", override=True)

    moved = store.transition(name, 1, "production", actor="admin", override=True, reason="hotfix")

    assert moved.stage == "production"
    entry = store.history(name)[-1]
    assert entry.override is True and entry.reason == "hotfix"
    assert "has no passing build (smoke test passed)" in entry.evidence["policy_refused"]


def test_blocked_moves_name_the_missing_build(store, packages):
    name = registered(store, packages)
    store.set_policy(
        name, PolicyChange(slo=SLO, protected_aliases=["champion"], require_build=True), actor="tester"
    )
    digest = store.get_version(name, 1).digest
    store.add_loadtest_report(name, 1, report_document(digest), HTML, actor="t")
    blocked = store.blocked_moves(name, 1)
    assert set(blocked) == {"production", "@champion"}
    assert all("has no passing build" in message for message in blocked.values())

    store.add_build_record(name, 1, build_document(digest), actor="ci")
    assert store.blocked_moves(name, 1) == {}


def test_control_characters_in_a_smoke_detail_are_replaced_not_stored():
    document = build_document(GOOD_DIGEST, smoke="failed", detail="\x1b[31mboom\x00\nline two\ttab")
    checked = check_build_document(document, model="iris", version=1)
    assert checked.smoke_detail == "\ufffd[31mboom\ufffd\nline two\ttab"
