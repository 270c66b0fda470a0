"""A real Docker engine, a local base image, and model images built once per session.

The engine and base image come from scripts/docker-engine.sh (idempotent: it does
only what is missing). Every image and container made here carries a unique name
and is removed at teardown. QUAYSIDE_SKIP_DOCKER_TESTS=1 skips these tests on a
machine that cannot run an engine; CI never sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import quayside

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Build:
    """One ``quayside build`` run: its tag, output and wall time."""

    tag: str
    package: Path
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture(scope="session")
def base_image() -> str:
    if os.environ.get("QUAYSIDE_SKIP_DOCKER_TESTS") == "1":
        pytest.skip("QUAYSIDE_SKIP_DOCKER_TESTS=1")
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "docker-engine.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/docker-engine.sh failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def docker_client(base_image):
    import docker

    return docker.from_env()


@pytest.fixture(scope="session")
def quayside_home(request, tmp_path_factory) -> Path:
    return wheelhouse_home(request, tmp_path_factory)


def wheelhouse_home(request, tmp_path_factory) -> Path:
    """QUAYSIDE_HOME for tests: in pytest's cache, so the wheelhouse is downloaded once per machine."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    return Path(cache.mkdir("quayside-home")) if cache else tmp_path_factory.mktemp("quayside-home")


def quayside_cli(
    *args: str, home: Path, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUAYSIDE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "quayside", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"quayside {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def training_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), y


def save_version(directory: Path, alpha: float, data: tuple[np.ndarray, np.ndarray]) -> Path:
    """A new version of the same model: retrained, converted to ONNX, saved as a package."""
    X, y = data
    quayside.save_model(
        Ridge(alpha=alpha).fit(X, y), directory, input_example=X[:20], to_onnx=True, name="diabetes"
    )
    return directory


@pytest.fixture(scope="session")
def image_tags(docker_client) -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    for tag in tags:
        try:
            docker_client.images.remove(tag, force=True)
        except Exception as e:  # teardown reports, never masks the test's own result
            print(f"could not remove {tag}: {e}")


def build(package: Path, *, base_image: str, home: Path, tags: list[str], no_cache: bool = False) -> Build:
    tag = f"quayside-test/diabetes:{uuid.uuid4().hex[:10]}"
    tags.append(tag)
    started = time.monotonic()
    result = quayside_cli(
        "build",
        str(package),
        "-t",
        tag,
        "--base-image",
        base_image,
        *(["--no-cache"] if no_cache else []),
        home=home,
    )
    return Build(tag, package, result.stdout, result.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def first_build(base_image, quayside_home, image_tags, tmp_path_factory, training_data) -> Build:
    """Version 1, built with --no-cache: the full cost of an image."""
    package = save_version(tmp_path_factory.mktemp("models") / "v1", 1.0, training_data)
    return build(package, base_image=base_image, home=quayside_home, tags=image_tags, no_cache=True)


@pytest.fixture(scope="session")
def second_build(
    first_build, base_image, quayside_home, image_tags, tmp_path_factory, training_data
) -> Build:
    """Version 2 of the same model (retrained), built after version 1: dependencies come from cache."""
    package = save_version(tmp_path_factory.mktemp("models") / "v2", 10.0, training_data)
    return build(package, base_image=base_image, home=quayside_home, tags=image_tags)
