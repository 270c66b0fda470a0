"""What the registry's pages compute from the promotion policy, without a server."""

from __future__ import annotations

from quayside.registry.policy import PromotionPolicy
from quayside.server.ui import views

STAGES = ["candidate", "staging", "production", "archived"]


def test_a_stage_the_policy_closes_carries_the_registrys_refusal_and_the_current_stage_is_left_out():
    choices = views.stage_choices(
        "staging", STAGES, {"production": "no passing load test", "@champion": "no"}
    )
    assert choices == [
        views.StageChoice("candidate"),
        views.StageChoice("production", "no passing load test"),
        views.StageChoice("archived"),
    ]


def test_alias_refusals_leave_out_stages_and_the_aliases_the_version_holds():
    blocked = {"production": "a", "@champion": "b", "@canary": "c"}
    assert views.alias_refusals(blocked, held=("canary",)) == {"champion": "b"}


def test_the_fixing_command_matches_the_move():
    assert views.promote_command("churn", 3) == "quayside promote churn 3"
    assert views.promote_command("churn", 3, "staging") == "quayside promote churn 3 --to staging"
    assert views.promote_command("churn", 3, "@champion") == "quayside promote churn 3 --alias champion"


def test_what_was_tested_is_named_with_the_image_when_there_is_one():
    digest = "0" * 64
    assert views.describe_tested({"kind": "package", "package_digest": digest}) == "package"
    assert (
        views.describe_tested({"kind": "image", "image": "churn:3", "package_digest": digest})
        == "image churn:3"
    )
    assert views.describe_tested({"kind": "image", "image_id": "sha256:ab"}) == "image sha256:ab"


def test_policy_facts_give_the_age_in_words_and_in_days_for_the_form():
    facts = views.policy_facts(PromotionPolicy(max_report_age_s=36 * 3600, slo="p95_ms<=25"))
    assert (facts.max_age, facts.max_age_days) == ("36 hours", 1.5)
    assert facts.requirement == "newer than 36 hours against p95_ms<=25 lasting at least 10 s"
    assert facts.updated_at is None and facts.protected_stages == ("production",)
