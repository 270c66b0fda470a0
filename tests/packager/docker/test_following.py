"""An image built from ``models:/diabetes@champion`` follows the alias on a real ``quayside server``.

The image carries the version the alias named at build time and serves it at once; deployed
with ``quayside deploy models:/diabetes@champion`` (which hands it the registry this machine uses)
it asks the registry which version the alias names, and when the alias moves it downloads that
version's package, checks its digest, and answers with it. With
the registry down, a fresh container of the same image still starts and serves what it carries.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest

import quayside
from quayside.compose.clients import RegistryClient
from tests.db.fixtures import Server
from tests.packager.docker.conftest import quayside_cli, save_version
from tests.serving.conftest import free_port


@pytest.fixture
def registry(tmp_path) -> Iterator[Server]:
    server = Server(tmp_path / "registry", f"sqlite:///{tmp_path / 'registry' / 'quayside.db'}")
    server.home.mkdir()
    server.settings = {"QUAYSIDE_MAX_ARTIFACT_BYTES": "100000000"}
    yield server.start()
    server.stop()


@contextmanager
def container(docker_client, tag: str, registry_url: str) -> Iterator[str]:
    port = free_port()
    running = docker_client.containers.run(
        tag,
        detach=True,
        network_mode="host",
        environment={
            "PORT": str(port),
            "GRPC_PORT": "0",
            "QUAYSIDE_REGISTRY_URI": registry_url,
            "FOLLOW_INTERVAL": "0.3",
        },
        labels={"io.quayside.test": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), f"{running.logs().decode()[-2000:]}")
        yield url
    finally:
        running.remove(force=True)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition, about: str = "", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {about}"
        time.sleep(0.1)


def answer(url: str, rows: np.ndarray) -> tuple[str, np.ndarray]:
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        ]
    }
    response = httpx.post(f"{url}/v2/models/diabetes/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    document = response.json()
    return document["model_version"], np.asarray(document["outputs"][0]["data"])


def test_an_image_follows_its_alias_and_starts_on_what_it_carries_when_the_registry_is_down(
    registry, tmp_path, base_image, quayside_home, docker_client, training_data, image_tags, monkeypatch
):
    X, _ = training_data
    rows = X[:9]
    packages = {
        1: save_version(tmp_path / "v1", 1.0, training_data),
        2: save_version(tmp_path / "v2", 80.0, training_data),
    }
    expected = {v: quayside.load_model(p).predict(rows)["prediction"].ravel() for v, p in packages.items()}
    assert not np.allclose(expected[1], expected[2])
    client = RegistryClient(registry.url)
    for version, package in packages.items():
        assert client.register_model(package, "diabetes").version == version
    client.set_alias("diabetes", "champion", 1)

    monkeypatch.setenv("QUAYSIDE_REGISTRY_URI", registry.url)
    tag = f"quayside-test/following:{uuid.uuid4().hex[:10]}"
    image_tags.append(tag)
    quayside_cli(
        "build", "models:/diabetes@champion", "-t", tag, "--base-image", base_image, home=quayside_home
    )
    environment = docker_client.images.get(tag).attrs["Config"]["Env"]
    assert "MODEL_SOURCE=models:/diabetes@champion" in environment
    assert "MODEL_VERSION=1" in environment

    # `quayside deploy` of the alias tells the container what to follow (the registry it uses itself).
    port, name = free_port(), f"following-{uuid.uuid4().hex[:8]}"
    deploy = ("deploy", "models:/diabetes@champion", "--image", tag, "--name", name, "--port", str(port))
    quayside_cli(*deploy, "--grpc-port", "0", "--follow-interval", "0.3", home=quayside_home)
    url = f"http://127.0.0.1:{port}"
    try:
        version, outputs = answer(url, rows)
        assert version == "1"
        np.testing.assert_allclose(outputs, expected[1], rtol=1e-4, atol=1e-3)

        client.set_alias("diabetes", "champion", 2)
        wait_for(lambda: answer(url, rows)[0] == "2", "the container never moved to version 2")
        version, outputs = answer(url, rows)
        np.testing.assert_allclose(outputs, expected[2], rtol=1e-4, atol=1e-3)
        assert httpx.get(f"{url}/v2/models/diabetes", timeout=5).json()["versions"] == ["2"]
    finally:
        quayside_cli("deploy", "--down", "--name", name, home=quayside_home, check=False)

    registry.stop()
    with container(
        docker_client, tag, registry.url
    ) as url:  # the registry is down: it serves what it carries
        version, outputs = answer(url, rows)
        assert version == "1"
        np.testing.assert_allclose(outputs, expected[1], rtol=1e-4, atol=1e-3)
