"""What ``quayside build`` decides before an engine is involved: where a push may go, what a budget bounds."""

from __future__ import annotations

import math

import pytest

from quayside.compose.images import BuildOptions, build_figures, check_pushable
from quayside.errors import UsageError
from quayside.packager.docker.build import BuildResult, _split_tag
from quayside.packager.docker.smoke import SmokeResult


@pytest.mark.parametrize(
    "tag", ["127.0.0.1:5000/iris:1", "localhost/iris:1", "registry.example.com/team/iris:1", "host:5000/a/b"]
)
def test_a_tag_that_names_its_registry_may_be_pushed(tag):
    check_pushable(tag)


@pytest.mark.parametrize("tag", ["iris:1", "quayside/iris:1", "team/iris"])
def test_a_tag_without_a_registry_host_is_refused_rather_than_sent_to_docker_hub(tag):
    with pytest.raises(UsageError, match=f"'{tag}' names none"):
        check_pushable(tag)


@pytest.mark.parametrize(
    ("tag", "parts"),
    [
        ("127.0.0.1:5000/iris:1", ("127.0.0.1:5000/iris", "1")),
        ("127.0.0.1:5000/team/iris", ("127.0.0.1:5000/team/iris", "latest")),
        ("iris:2", ("iris", "2")),
    ],
)
def test_a_tag_splits_into_repository_and_tag_at_the_last_colon_after_the_last_slash(tag, parts):
    assert _split_tag(tag) == parts


def test_the_budget_figures_come_from_the_image_and_the_smoke_test_and_are_nan_when_unmeasured():
    build = BuildResult(tag="t", image_id="sha256:x", size=187_300_000, base_size=0)
    measured = build_figures(build, SmokeResult(cold_start_s=1.5, first_inference_ms=4.0, detail=""))
    assert measured == {"image_mb": 187.3, "cold_start_s": 1.5, "first_inference_ms": 4.0}
    skipped = build_figures(build, None)
    assert skipped["image_mb"] == 187.3
    assert math.isnan(skipped["cold_start_s"]) and math.isnan(skipped["first_inference_ms"])
    assert BuildOptions().smoke and BuildOptions().smoke_timeout_s == 60
