"""``quayside promote --image``: the gate load-tests the version's built image in a real Docker engine; the
registry keeps the report, records that it tested the image, and judges it with the model's policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from quayside.config import Settings
from quayside.registry.client import RegistryClient
from tests.loadtesting.conftest import run_cli
from tests.packager.docker.conftest import base_image as base_image
from tests.packager.docker.conftest import docker_client as docker_client
from tests.packager.docker.conftest import first_build as first_build
from tests.packager.docker.conftest import image_tags as image_tags
from tests.packager.docker.conftest import quayside_home as quayside_home
from tests.packager.docker.conftest import training_data as training_data

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def staged_image(home, first_build) -> tuple[RegistryClient, str]:
    """The built model registered as 'diabetes' v1 and moved to staging, its policy requiring the image; the tag."""
    client = RegistryClient(settings=Settings(home=home))
    client.register_model(str(first_build.package), "diabetes")
    client.set_policy("diabetes", min_duration_s=2, require_image=True, reason="short tests")
    client.transition("diabetes", 1, "staging", reason="built")
    return client, first_build.tag


def _promote(home: Path, *args: str):
    return run_cli(
        "promote", "diabetes", "1", "--to", "production", *args,
        "--duration", "3s", "--users", "4", "--spawn-rate", "4",
        env={"QUAYSIDE_HOME": str(home)}, timeout=300,
    )  # fmt: skip


def test_a_passing_image_is_promoted_and_its_container_removed(home, staged_image, docker_client):
    client, tag = staged_image
    client.set_policy("diabetes", slo="error_rate<=0,rps>=1")
    result = _promote(home, "--image", tag)
    assert result.returncode == 0, result.stdout + result.stderr
    assert client.get_version("diabetes", 1).stage == "production"
    entry = client.history("diabetes", 1)[-1]
    report = client.loadtest_report("diabetes", 1, entry.evidence["loadtest_report"])
    assert report["summary"]["requests"] > 0 and report["summary"]["failures"] == 0
    assert report["tested"]["kind"] == "image" and report["tested"]["image"] == tag
    assert entry.evidence["tested"]["kind"] == "image"
    assert not docker_client.containers.list(filters={"ancestor": tag})


def test_an_image_that_misses_the_slo_is_refused_and_nothing_moves(home, staged_image, docker_client):
    client, tag = staged_image
    client.set_policy("diabetes", slo="p95_ms<=0.001")
    result = _promote(home, "--image", tag)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not promoted" in result.stdout
    assert client.get_version("diabetes", 1).stage == "staging"
    [kept] = client.loadtest_reports("diabetes", 1)
    assert kept.passed is False
    assert not docker_client.containers.list(filters={"ancestor": tag})


def test_a_policy_that_requires_the_image_refuses_a_package_test_before_any_load(home, staged_image):
    client, _ = staged_image
    client.set_policy("diabetes", slo="error_rate<=0")
    result = _promote(home)
    assert result.returncode == 1 and "--image" in result.stderr
    assert client.loadtest_reports("diabetes", 1) == []


def test_an_image_that_does_not_exist_is_one_readable_error(home, staged_image):
    client, _ = staged_image
    client.set_policy("diabetes", slo="error_rate<=0")
    result = _promote(home, "--image", "quayside-test/no-such-image:0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "no-such-image" in result.stderr
