"""``quayside promote --image``: the gate load-tests the version's built image in a real Docker engine."""

from __future__ import annotations

import json
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
    """The built model registered as 'diabetes' v1 and moved to staging; the image's tag."""
    client = RegistryClient(settings=Settings(home=home))
    client.register_model(str(first_build.package), "diabetes")
    client.transition("diabetes", 1, "staging", reason="built")
    return client, first_build.tag


def _promote(home: Path, image: str, slo: str):
    return run_cli(
        "promote", "diabetes", "1", "--to", "production", "--image", image, "--slo", slo,
        "--duration", "3s", "--users", "4", "--spawn-rate", "4",
        env={"QUAYSIDE_HOME": str(home)}, timeout=300,
    )  # fmt: skip


def test_a_passing_image_is_promoted_and_its_container_removed(home, staged_image, docker_client):
    client, tag = staged_image
    result = _promote(home, tag, "error_rate<=0,rps>=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert client.get_version("diabetes", 1).stage == "production"
    entry = client.history("diabetes", 1)[-1]
    report = json.loads(Path(entry.evidence["report_path"]).read_text())
    assert report["summary"]["requests"] > 0 and report["summary"]["failures"] == 0
    assert not docker_client.containers.list(filters={"ancestor": tag})


def test_an_image_that_misses_the_slo_is_refused_and_nothing_moves(home, staged_image, docker_client):
    client, tag = staged_image
    result = _promote(home, tag, "p95_ms<=0.001")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not promoted" in result.stdout
    assert client.get_version("diabetes", 1).stage == "staging"
    assert not docker_client.containers.list(filters={"ancestor": tag})


def test_an_image_that_does_not_exist_is_one_readable_error(home, staged_image):
    result = _promote(home, "quayside-test/no-such-image:0", "error_rate<=0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "no-such-image" in result.stderr
