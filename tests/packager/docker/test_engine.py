"""Model images built by the real engine: they serve what the model predicts, stay small, and rebuild from cache."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest

import quayside
from tests.packager.docker.conftest import Build, quayside_cli

pytestmark = pytest.mark.slow

MB = 1_000_000
SIZE_TARGET = 150 * MB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout} s")


@contextmanager
def running(docker_client, tag: str) -> Iterator[str]:
    port = free_port()
    container = docker_client.containers.run(
        tag,
        detach=True,
        network_mode="host",
        environment={"PORT": str(port)},
        labels={"io.quayside.test": "1"},
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        container.remove(force=True)


def steps(build: Build) -> list[tuple[str, bool]]:
    """(instruction, from cache) for each step of the build's streamed progress."""
    result: list[tuple[str, bool]] = []
    for line in build.stderr.splitlines():
        match = re.match(r"^Step \d+/\d+ : (.*)$", line.strip())
        if match:
            result.append((match.group(1), False))
        elif "Using cache" in line and result:
            result[-1] = (result[-1][0], True)
    return result


def test_the_image_answers_v2_and_invocations_with_the_in_process_predictions(
    first_build, docker_client, base_image, training_data
):
    X, _ = training_data
    rows = X[:7]
    expected = quayside.load_model(first_build.package).predict(rows)["prediction"]
    with running(docker_client, first_build.tag) as url:
        v2 = httpx.post(
            f"{url}/v2/models/diabetes/infer",
            json={
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": list(rows.shape),
                        "data": rows.ravel().tolist(),
                    }
                ]
            },
            timeout=10,
        )
        invocations = httpx.post(f"{url}/invocations", json={"inputs": {"input": rows.tolist()}}, timeout=10)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert v2.status_code == 200, v2.text
    phases = dict(
        re.findall(
            r'^quayside_startup_phase_seconds\{[^}]*phase="(\w+)"[^}]*\} ([0-9.e+-]+)$',
            metrics,
            re.M,
        )
    )
    assert set(phases) == {"import", "load", "warmup"}, metrics
    assert all(float(seconds) > 0 for seconds in phases.values()), phases
    total = re.search(r"^quayside_startup_seconds(?:\{[^}]*\})? ([0-9.e+-]+)$", metrics, re.M)
    assert total and float(total.group(1)) >= sum(float(s) for s in phases.values()) * 0.99, metrics
    assert invocations.status_code == 200, invocations.text
    np.testing.assert_allclose(v2.json()["outputs"][0]["data"], expected, rtol=1e-6)
    np.testing.assert_allclose(invocations.json()["predictions"], expected, rtol=1e-6)

    image = docker_client.images.get(first_build.tag)
    above_base = image.attrs["Size"] - docker_client.images.get(base_image).attrs["Size"]
    print(
        f"\nimage {first_build.tag}: {image.attrs['Size'] / MB:.1f} MB, {above_base / MB:.1f} MB above "
        f"{base_image}; built in {first_build.seconds:.1f} s (--no-cache)"
    )
    assert above_base <= SIZE_TARGET, (
        f"{above_base / MB:.1f} MB above the base (target {SIZE_TARGET / MB:.0f})"
    )
    assert "above the base image" in first_build.stdout
    assert "smoke test passed: cold start" in first_build.stdout
    assert "as the golden outputs say" in first_build.stdout


def test_the_image_runs_as_non_root_with_a_health_check_labels_and_no_pip(first_build, docker_client):
    image = docker_client.images.get(first_build.tag)
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert "/v2/health/ready" in " ".join(config["Healthcheck"]["Test"])
    labels = config["Labels"]
    assert labels["io.quayside.model.name"] == "diabetes"
    assert labels["io.quayside.model.digest"] == quayside.load_model(first_build.package).manifest.digest()
    assert labels["io.quayside.model.runtime"] == "onnx"
    assert '"name":"input"' in labels["io.quayside.model.signature"]
    assert labels["org.opencontainers.image.title"] == "diabetes"
    listing = docker_client.containers.run(
        first_build.tag,
        entrypoint=[
            "python",
            "-c",
            "import importlib.util as u, sys; print([m for m in "
            "('pip', 'setuptools', 'sklearn', 'skl2onnx', 'sqlalchemy', 'docker', 'onnx') if u.find_spec(m)])",
        ],
        network_mode="host",
        remove=True,
    )
    assert listing.decode().strip() == "[]"
    pycache = docker_client.containers.run(
        first_build.tag,
        entrypoint=["sh", "-c", "find /opt/quayside/venv -name __pycache__ -o -name tests -type d | head -3"],
        network_mode="host",
        remove=True,
    )
    assert pycache.decode().strip() == ""


def test_a_new_model_version_reuses_the_dependency_layers(first_build, second_build):
    second = dict(steps(second_build))
    wheelhouse = [
        text
        for text in second
        if text.startswith(("COPY wheelhouse/", "RUN /opt/quayside/venv/bin/python -m pip"))
    ]
    assert len(wheelhouse) == 2, second
    assert all(second[text] for text in wheelhouse), "the wheelhouse steps were rebuilt"
    assert second["COPY --from=builder /opt/quayside/venv /opt/quayside/venv"]
    assert not second["COPY model/ /opt/quayside/model/"], "the model layer must change with the model"
    print(
        f"\nfirst build (--no-cache) {first_build.seconds:.1f} s, second build (new version) "
        f"{second_build.seconds:.1f} s"
    )
    assert second_build.seconds < first_build.seconds


def test_a_docker_deployment_is_replaced_without_a_failed_request(
    first_build, second_build, quayside_home, docker_client, training_data
):
    name = f"qstest-{free_port()}"
    port = free_port()
    X, _ = training_data
    row = X[:1].tolist()
    try:
        quayside_cli(
            "deploy",
            str(first_build.package),
            "--name",
            name,
            "--port",
            str(port),
            "--image",
            first_build.tag,
            home=quayside_home,
        )
        failures: list[str] = []
        answers: list[float] = []
        stop = threading.Event()

        def client_loop(keep_alive: bool) -> None:
            client = httpx.Client(timeout=10) if keep_alive else None
            while not stop.is_set():
                try:
                    post = client.post if client else httpx.post
                    response = post(f"http://127.0.0.1:{port}/invocations", json={"inputs": {"input": row}})
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                    else:
                        answers.append(response.json()["predictions"][0])
                except httpx.HTTPError as e:
                    failures.append(repr(e))

        loops = [
            threading.Thread(target=client_loop, args=(keep_alive,)) for keep_alive in (True, True, False)
        ]
        for loop in loops:
            loop.start()
        time.sleep(0.5)
        result = quayside_cli(
            "deploy",
            str(second_build.package),
            "--name",
            name,
            "--port",
            str(port),
            "--image",
            second_build.tag,
            home=quayside_home,
        )
        time.sleep(1.0)
        stop.set()
        for loop in loops:
            loop.join()
        assert failures == [], failures[:5]
        old, new = (
            quayside.load_model(b.package).predict(X[:1])["prediction"][0]
            for b in (first_build, second_build)
        )
        assert answers[0] == pytest.approx(old, rel=1e-5) and answers[-1] == pytest.approx(new, rel=1e-5)
        print(f"\n{len(answers)} requests through the switch, none failed")
        assert "stopping" in result.stderr

        listing = quayside_cli("deployments", home=quayside_home).stdout
        assert name in listing and second_build.tag in listing and first_build.tag not in listing
        down = quayside_cli("deploy", "--name", name, "--down", home=quayside_home)
        assert f"removed deployment {name}" in down.stdout
        assert name not in quayside_cli("deployments", home=quayside_home).stdout
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"io.quayside.deployment={name}"}
        ):
            container.remove(force=True)


def test_a_docker_deployment_with_a_token_file_requires_the_token_and_stays_healthy(
    first_build, quayside_home, docker_client, training_data, tmp_path
):
    token = "a-token-for-the-deployed-model-server"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)  # the container's user (UID 10001) reads it through the read-only mount
    name, port = f"qstoken-{free_port()}", free_port()
    X, _ = training_data
    body = {"inputs": {"input": X[:1].tolist()}}
    url = f"http://127.0.0.1:{port}"
    try:
        quayside_cli(
            "deploy",
            str(first_build.package),
            "--name",
            name,
            "--port",
            str(port),
            "--image",
            first_build.tag,
            "--auth-token-file",
            str(token_file),
            home=quayside_home,
        )
        assert httpx.get(f"{url}/v2/health/ready", timeout=10).status_code == 200
        refused = httpx.post(f"{url}/invocations", json=body, timeout=10)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        answered = httpx.post(
            f"{url}/invocations", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answered.status_code == 200, answered.text
        (container,) = docker_client.containers.list(filters={"label": f"io.quayside.deployment={name}"})
        (mount,) = [
            m for m in container.attrs["Mounts"] if m["Destination"] == "/run/secrets/quayside-auth-token"
        ]
        assert mount["RW"] is False
        assert token not in str(container.attrs["Config"]["Env"])  # the file's path is passed, not the token
        deadline = time.monotonic() + 90  # the image's HEALTHCHECK probes /v2/health/ready every 10 s
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["State"]["Health"]["Status"] == "healthy":
                break
            time.sleep(1)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"io.quayside.deployment={name}"}
        ):
            container.remove(force=True)
