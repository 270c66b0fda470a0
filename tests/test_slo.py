from __future__ import annotations

import math

import pytest

from quayside.errors import UsageError
from quayside.slo import Objective, evaluate, parse_slo


def test_the_issue_example_parses_into_four_objectives_in_order():
    objectives = parse_slo("p95_ms<=25,p99_ms<=60,error_rate<=0.001,rps>=300")
    assert objectives == (
        Objective("p95_ms", "<=", 25),
        Objective("p99_ms", "<=", 60),
        Objective("error_rate", "<=", 0.001),
        Objective("rps", ">=", 300),
    )


def test_spaces_around_terms_and_operators_are_allowed():
    assert parse_slo(" p95_ms <= 25 , rps>=1e2 ") == (
        Objective("p95_ms", "<=", 25),
        Objective("rps", ">=", 100),
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("p95_ms<=25,p96<=3", "p96<=3"),
        ("p95_ms=25", "p95_ms=25"),
        ("p95_ms<=fast", "p95_ms<=fast"),
        ("rps>=300,", "empty term"),
        ("p95_ms<=25,,rps>=1", "empty term"),
        ("error_rate<=-1", "error_rate<=-1"),
        ("p95_ms", "p95_ms"),
        ("", "empty"),
    ],
)
def test_a_malformed_slo_is_a_usage_error_naming_the_bad_term(text, named):
    with pytest.raises(UsageError, match=named.replace("*", r"\*")) as error:
        parse_slo(text)
    assert "SLO" in error.value.message


def test_the_verdict_lists_measured_against_required_and_passes_only_when_all_do():
    objectives = parse_slo("p95_ms<=25,rps>=300,error_rate<=0.001")
    verdict = evaluate(objectives, {"p95_ms": 12.5, "rps": 250.0, "error_rate": 0.0})
    assert not verdict.passed
    assert [(r.objective.metric, r.measured, r.passed) for r in verdict.results] == [
        ("p95_ms", 12.5, True),
        ("rps", 250.0, False),
        ("error_rate", 0.0, True),
    ]
    document = verdict.to_dict()
    assert document["objectives"][1] == {
        "objective": "rps>=300",
        "metric": "rps",
        "comparison": ">=",
        "required": 300.0,
        "measured": 250.0,
        "passed": False,
    }
    assert evaluate(objectives, {"p95_ms": 1, "rps": 301, "error_rate": 0}).passed


def test_a_latency_never_measured_fails_its_objective():
    verdict = evaluate(parse_slo("p95_ms<=25"), {"p95_ms": math.nan})
    assert not verdict.passed
    assert verdict.to_dict()["objectives"][0]["measured"] is None


def test_a_budget_has_the_slos_grammar_over_the_built_images_figures():
    from quayside.slo import format_slo, parse_budget

    budget = parse_budget(" image_mb<=200, cold_start_s <= 3,first_inference_ms<=50")
    assert format_slo(budget) == "image_mb<=200,cold_start_s<=3,first_inference_ms<=50"
    verdict = evaluate(budget, {"image_mb": 231.4, "cold_start_s": 1.2, "first_inference_ms": math.nan})
    assert [str(r.objective) for r in verdict.failed] == ["image_mb<=200", "first_inference_ms<=50"]


@pytest.mark.parametrize(
    ("text", "named"),
    [("p95_ms<=25", "unknown metric 'p95_ms'"), ("image_mb<=", "malformed"), ("", "the budget is empty")],
)
def test_a_malformed_budget_is_a_usage_error_that_says_budget(text, named):
    from quayside.slo import parse_budget

    with pytest.raises(UsageError, match=named) as error:
        parse_budget(text)
    assert "budget" in error.value.message
