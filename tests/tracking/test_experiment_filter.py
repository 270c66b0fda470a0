"""The experiment-name filter MLflow's SearchExperiments sends, read by the tracking component."""

from __future__ import annotations

import time

import pytest

from quayside.errors import UsageError
from quayside.tracking.experiment_filter import experiment_name_filter, like_matcher

NAMES = ["iris", "Iris-2", "mnist", "iris_b"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", NAMES),
        ("name = 'iris'", ["iris"]),
        ("attributes.name != 'iris'", ["Iris-2", "mnist", "iris_b"]),
        ("name LIKE 'iris%'", ["iris", "iris_b"]),
        ("name ILIKE 'iris%'", ["iris", "Iris-2", "iris_b"]),
        ("name like 'iris_b'", ["iris_b"]),
        ('name LIKE "%n%"', ["mnist"]),
    ],
)
def test_the_name_filter_matches_as_mlflow_reads_it(filter_string: str, expected: list[str]):
    matches = experiment_name_filter(filter_string)
    assert [name for name in NAMES if matches(name)] == expected


def test_another_experiment_filter_is_refused_naming_what_is_read():
    with pytest.raises(UsageError, match="Quayside reads only"):
        experiment_name_filter("tags.team = 'x'")


def test_like_matches_underscore_as_one_character_and_never_backtracks():
    assert like_matcher("a_c")("abc") and not like_matcher("a_c")("abbc")
    started = time.monotonic()
    assert not like_matcher("%a%a%a%a%a%a%a%b")("a" * 5000)
    assert time.monotonic() - started < 1.0
