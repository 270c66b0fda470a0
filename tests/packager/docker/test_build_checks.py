"""``quayside build`` checks what it built with the real engine: the smoke test, the budget, the record, the push.

A broken image (a missing runtime dependency, a tampered model) fails the build at the
smoke step and leaves no tag; a budget the image misses fails it naming the figure; a
passing build of a registered version is recorded in the registry, and after a push to a
real registry (Debian's docker-registry on 127.0.0.1, started by scripts/oci-registry.sh)
deployments use the image by its digest, pulled into an engine that no longer holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from sklearn.linear_model import Ridge

import quayside
from quayside.packager.golden import check_outputs
from quayside.packager.manifest import read_manifest
from tests.packager.docker.conftest import REPO, quayside_cli, save_version

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def oci_registry(base_image) -> str:
    """HOST:PORT of a real OCI registry on 127.0.0.1 (the test command's set-up starts it; so does this)."""
    address = os.environ.get("QUAYSIDE_TEST_OCI_REGISTRY")
    if address:
        return address
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "oci-registry.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/oci-registry.sh failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def registry_env(tmp_path, monkeypatch) -> Path:
    """A registry of this test's own (SQLite and artifacts under tmp_path); the wheelhouse stays shared."""
    monkeypatch.setenv("QUAYSIDE_DB_URL", f"sqlite:///{tmp_path / 'quayside.db'}")
    monkeypatch.setenv("QUAYSIDE_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    return tmp_path


def has_tag(docker_client, tag: str) -> bool:
    return any(tag in (image.tags or []) for image in docker_client.images.list())


def rewrite_file(package: Path, path: str, data: bytes) -> None:
    """Replace one file of a package and rewrite its digest and size in the manifest, as a tamperer would."""
    (package / path).write_bytes(data)
    manifest_path = package / "quayside.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["path"] == path:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["size"] = len(data)
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def test_an_image_without_its_runtime_dependency_fails_at_the_smoke_step_and_leaves_no_tag(
    tmp_path, base_image, quayside_home, docker_client, training_data
):
    X, y = training_data
    package = tmp_path / "native"
    quayside.save_model(Ridge().fit(X, y), package, input_example=X[:5], name="native-ridge")
    manifest_path = package / "quayside.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["environment"]["requirements"] = [
        r for r in manifest["environment"]["requirements"] if not r.startswith("scikit-learn")
    ]
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    tag = f"quayside-test/missing-dependency:{uuid.uuid4().hex[:10]}"

    result = quayside_cli(
        "build",
        str(package),
        "-t",
        tag,
        "--base-image",
        base_image,
        "--trust",
        home=quayside_home,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    assert "smoke test failed: the container exited" in result.stderr
    assert "No module named 'sklearn'" in result.stderr, result.stderr
    assert not has_tag(docker_client, tag)
    assert not docker_client.containers.list(all=True, filters={"label": "io.quayside.smoke"})


def test_a_tampered_model_whose_answers_differ_from_its_golden_outputs_fails_the_smoke_step(
    tmp_path, base_image, quayside_home, docker_client, training_data
):
    import onnx

    package = save_version(tmp_path / "tampered", 1.0, training_data)
    model = onnx.load(str(package / "model.onnx"))
    changed = 0
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "intercepts":
                attribute.floats[:] = [value + 100.0 for value in attribute.floats]
                changed += 1
    for initializer in model.graph.initializer:  # a converter that stores the weights as tensors instead
        if not changed:
            array = onnx.numpy_helper.to_array(initializer) + 100.0
            initializer.CopyFrom(onnx.numpy_helper.from_array(array.astype(array.dtype), initializer.name))
            changed += 1
    assert changed, "the ONNX model holds nothing to tamper with"
    rewrite_file(package, "model.onnx", model.SerializeToString())
    tag = f"quayside-test/tampered:{uuid.uuid4().hex[:10]}"

    result = quayside_cli(
        "build", str(package), "-t", tag, "--base-image", base_image, home=quayside_home, check=False
    )

    assert result.returncode == 1, result.stderr
    assert "answers the input example differently from the model's golden outputs" in result.stderr
    assert "output 'variable'" in result.stderr or "output 'prediction'" in result.stderr, result.stderr
    assert not has_tag(docker_client, tag)


def register(package: Path, name: str, home: Path) -> None:
    quayside_cli("registry", "register", str(package), "--name", name, home=home)


def test_a_budget_the_image_misses_fails_naming_the_figure_and_a_passing_build_is_recorded(
    registry_env, tmp_path, base_image, quayside_home, docker_client, training_data, image_tags
):
    package = save_version(tmp_path / "v1", 1.0, training_data)
    register(package, "budgeted", quayside_home)
    tag = f"quayside-test/budgeted:{uuid.uuid4().hex[:10]}"
    image_tags.append(tag)

    over = quayside_cli(
        "build", "models:/budgeted/1", "-t", tag, "--base-image", base_image, "--budget", "image_mb<=1",
        home=quayside_home, check=False,
    )  # fmt: skip
    assert over.returncode == 1, over.stderr
    line = over.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the image is over its budget: image_mb is "), line
    assert "the budget allows image_mb<=1" in line
    assert not has_tag(docker_client, tag)

    passed = quayside_cli(
        "build", "models:/budgeted/1", "-t", tag, "--base-image", base_image,
        "--budget", "image_mb<=2000,cold_start_s<=60,first_inference_ms<=5000", home=quayside_home,
    )  # fmt: skip
    assert "within budget: image_mb" in passed.stdout
    assert "recorded build" in passed.stdout

    listed = json.loads(
        quayside_cli("registry", "builds", "budgeted", "1", "--json", home=quayside_home).stdout
    )
    builds = listed["builds"] if isinstance(listed, dict) else listed
    assert [b["smoke"] for b in builds] == ["passed", "failed"]
    newest, failed = builds
    image = docker_client.images.get(tag)
    assert newest["image_id"] == image.id
    assert newest["size_bytes"] == image.attrs["Size"]
    assert newest["base_image"] == base_image
    assert newest["package_digest"] == read_manifest(package).digest()
    assert 0 < newest["cold_start_s"] < 60 and 0 < newest["first_inference_ms"] < 5000
    assert newest["budget"] == "image_mb<=2000,cold_start_s<=60,first_inference_ms<=5000"
    assert newest["repo_digest"] is None
    assert newest["passed"] is True
    assert "over its budget" in failed["smoke_detail"]
    assert failed["passed"] is False

    port = free_port()
    env = {**os.environ, "QUAYSIDE_HOME": str(quayside_home)}
    server = subprocess.Popen(
        [sys.executable, "-m", "quayside", "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/registry/models/budgeted/versions/1/builds"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        assert [b["id"] for b in answer.json()["builds"]] == [b["id"] for b in builds]
        one = httpx.get(f"{url}/{newest['id']}", timeout=5)
        assert one.json()["image_id"] == image.id
    finally:
        server.terminate()
        server.wait(30)


def test_a_pushed_build_is_deployed_by_its_digest_pulled_into_an_engine_that_no_longer_holds_it(
    registry_env, tmp_path, base_image, quayside_home, docker_client, training_data, oci_registry
):
    package = save_version(tmp_path / "v1", 3.0, training_data)
    register(package, "pushed", quayside_home)
    tag = f"{oci_registry}/quayside-test-pushed:{uuid.uuid4().hex[:10]}"
    built = quayside_cli(
        "build", "models:/pushed/1", "-t", tag, "--base-image", base_image, "--push", home=quayside_home
    )
    reference = next(line.split()[1] for line in built.stdout.splitlines() if line.startswith("pushed "))
    assert reference.startswith(f"{oci_registry}/quayside-test-pushed@sha256:")
    (record,) = json.loads(
        quayside_cli("registry", "builds", "pushed", "1", "--json", home=quayside_home).stdout
    )
    assert record["repo_digest"] == reference

    docker_client.images.remove(docker_client.images.get(tag).id, force=True)  # every tag and digest of it
    assert not has_tag(docker_client, tag)

    manifests = quayside_cli(
        "deploy", "models:/pushed/1", "--target", "kubernetes", "--dry-run", home=quayside_home
    ).stdout
    images = {
        container["image"]
        for document in yaml.safe_load_all(manifests)
        if document and document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    }
    assert images == {reference}

    port = free_port()
    name = f"pushed-{uuid.uuid4().hex[:8]}"
    deployed = quayside_cli(
        "deploy", "models:/pushed/1", "--name", name, "--port", str(port), home=quayside_home
    )
    try:
        assert f"pulling {reference}" in deployed.stderr
        (container,) = docker_client.containers.list(filters={"label": f"io.quayside.deployment={name}"})
        assert container.attrs["Config"]["Image"] == reference
        manifest = read_manifest(package)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"inputs": manifest.input_example["input"]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        golden = manifest.golden_outputs()
        (output,) = golden
        got = {output: np.asarray(answer.json()["predictions"])}
        assert check_outputs(golden, got, manifest.parity_tolerance()) == []

        quayside_cli(
            "registry", "policy", "set", "pushed", "--slo", "error_rate<=0.5", "--min-duration", "1s",
            "--require-build", "--require-image", home=quayside_home,
        )  # fmt: skip
        quayside_cli("registry", "transition", "pushed", "1", "--to", "staging", home=quayside_home)
        promoted = quayside_cli(
            "promote", "pushed", "1", "--built", "--users", "2", "--duration", "2s", home=quayside_home
        )
        assert f"load-testing build {record['id']}: {reference}" in promoted.stderr
        (report,) = json.loads(
            quayside_cli("registry", "reports", "pushed", "1", "--json", home=quayside_home).stdout
        )
        assert report["tested"]["kind"] == "image" and report["tested"]["image"] == reference
        history = quayside_cli("registry", "history", "pushed", "--json", home=quayside_home).stdout
        (moved,) = [e for e in json.loads(history) if e["action"] == "transition" and e["to"] == "production"]
        assert moved["evidence"]["build"]["repo_digest"] == reference
    finally:
        quayside_cli("deploy", "--down", "--name", name, home=quayside_home, check=False)
        for image in docker_client.images.list():
            if reference in (image.attrs.get("RepoDigests") or []):
                docker_client.images.remove(image.id, force=True)
