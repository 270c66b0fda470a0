"""quayside build / deploy from the command line, where no engine or cluster is needed: errors and rendering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import numpy as np
import pytest
import yaml
from sklearn.linear_model import Ridge

import quayside
from tests.packager.docker.conftest import wheelhouse_home


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quayside", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory, diabetes) -> Path:
    X, y = diabetes
    X = X.astype(np.float32)
    path = tmp_path_factory.mktemp("models") / "diabetes"
    quayside.save_model(Ridge().fit(X, y), path, input_example=X[:10], to_onnx=True, name="diabetes")
    return path


NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["build", "{package}", "-t", "quayside-test/never:1"], id="build"),
        pytest.param(["deploy", "{package}", "--target", "docker"], id="deploy"),
        pytest.param(["deployments"], id="deployments"),
    ],
)
def test_without_an_engine_the_error_says_how_to_get_one_and_exits_1(command, package):
    result = run(*[part.format(package=package) for part in command], env=NO_ENGINE)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("error: no Docker engine is reachable at unix:///nonexistent.sock")
    assert "scripts/docker-engine.sh" in message and "--context-only" in message


def test_context_only_writes_a_build_context_without_an_engine(package, tmp_path, request, tmp_path_factory):
    home = wheelhouse_home(request, tmp_path_factory)  # the wheelhouse cache the engine tests share
    context = tmp_path / "context"
    result = run(
        "build", str(package), "--context-only", str(context), env={**NO_ENGINE, "QUAYSIDE_HOME": str(home)}
    )
    assert result.returncode == 0, result.stderr
    dockerfile = (context / "Dockerfile").read_text()
    wheels = {p.name.split("-")[0].lower() for p in (context / "wheelhouse").glob("*.whl")}
    assert {
        "onnxruntime",
        "numpy",
        "fastapi",
        "uvicorn",
        "uvloop",
        "httptools",
        "orjson",
        "quayside",
    } <= wheels
    assert not wheels & {"scikit_learn", "skl2onnx", "torch", "sqlalchemy", "typer", "rich", "onnx"}
    assert (context / "model" / "quayside.yaml").is_file()
    assert dockerfile.index("COPY wheelhouse/") < dockerfile.index("COPY model/")
    assert "USER 10001:10001" in dockerfile and "HEALTHCHECK" in dockerfile


def test_dry_run_prints_manifests_that_validate(package):
    result = run(
        "deploy",
        str(package),
        "--target",
        "kubernetes",
        "--dry-run",
        "--max-replicas",
        "6",
        "--namespace",
        "ml",
    )
    assert result.returncode == 0, result.stderr
    manifests = list(yaml.safe_load_all(result.stdout))
    assert [m["kind"] for m in manifests] == [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
        assert manifest["metadata"]["namespace"] == "ml"


def test_dry_run_with_a_token_secret_mounts_it_and_validates(package):
    result = run(
        "deploy", str(package), "--target", "kubernetes", "--dry-run", "--auth-token-secret", "diabetes-token"
    )
    assert result.returncode == 0, result.stderr
    manifests = [m for m in yaml.safe_load_all(result.stdout) if m]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    pod = manifests[0]["spec"]["template"]["spec"]
    assert {"name": "QUAYSIDE_AUTH_TOKEN_FILE", "value": "/var/run/secrets/quayside/token"} in pod[
        "containers"
    ][0]["env"]
    assert pod["volumes"][1]["secret"]["secretName"] == "diabetes-token"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target", "docker", "--auth-token-secret", "t"],
            "--auth-token-secret is for --target kubernetes",
        ),
        (
            ["--target", "kubernetes", "--dry-run", "--auth-token-file", "f"],
            "--auth-token-file is for --target docker",
        ),
        (["--target", "docker", "--auth-token-file", "/nonexistent/token"], "--auth-token-file: no file"),
    ],
    ids=["secret-on-docker", "file-on-kubernetes", "missing-file"],
)
def test_a_token_option_for_the_other_target_or_a_missing_file_is_a_clear_error(package, args, message):
    result = run("deploy", str(package), *args, env=NO_ENGINE)
    assert result.returncode == 1
    assert message in result.stderr


def test_output_yaml_of_a_canary_renders_the_canary_deployment(package):
    result = run(
        "deploy", str(package), "--target", "kubernetes", "-o", "yaml", "--canary", "20", "--replicas", "5"
    )
    assert result.returncode == 0, result.stderr
    (canary,) = [m for m in yaml.safe_load_all(result.stdout) if m]
    assert canary["metadata"]["name"] == "diabetes-canary" and canary["spec"]["replicas"] == 1
    assert "scaled to 4 replicas" in result.stdout


@pytest.mark.parametrize(
    "extra", [[], ["--canary", "10"], ["--promote-canary"]], ids=["apply", "canary", "promote"]
)
def test_applying_without_a_kubeconfig_is_a_clear_error(package, tmp_path, extra):
    env = {"KUBECONFIG": str(tmp_path / "missing-kubeconfig"), "HOME": str(tmp_path)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = run(
        "deploy", str(package), "--target", "kubernetes", "--image", "reg/diabetes:1", *extra, env=env
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: no Kubernetes cluster configured: no kubeconfig at {tmp_path / 'missing-kubeconfig'} and not "
        "running inside a cluster; set KUBECONFIG (or --kubeconfig) to a cluster's config, or print the "
        "manifests with --dry-run"
    )


def test_a_package_that_only_a_pickle_serves_is_refused_before_any_build(tmp_path, diabetes):
    X, y = diabetes
    path = tmp_path / "native"
    quayside.save_model(Ridge().fit(X, y), path, input_example=X[:5], name="native")
    result = run("build", str(path), "--context-only", str(tmp_path / "ctx"))
    assert result.returncode == 1
    assert "convert it first" in result.stderr


@pytest.fixture(scope="module")
def registered(package, tmp_path_factory) -> dict[str, str]:
    """A registry of this module's own holding the package as version 1 of 'diabetes', @champion on it."""
    home = tmp_path_factory.mktemp("registry-home")
    env = {"QUAYSIDE_HOME": str(home), "QUAYSIDE_REGISTRY_URI": "", "QUAYSIDE_TRACKING_URI": ""}
    for args in (
        ["registry", "register", str(package), "--name", "diabetes"],
        ["registry", "alias", "set", "diabetes", "champion", "1"],
    ):
        result = run(*args, env=env)
        assert result.returncode == 0, result.stderr
    return env


def _container_env(stdout: str) -> dict[str, object]:
    manifests = [m for m in yaml.safe_load_all(stdout) if m]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    (container,) = manifests[0]["spec"]["template"]["spec"]["containers"]
    return {
        variable["name"]: variable.get("value", variable.get("valueFrom")) for variable in container["env"]
    }


def test_a_deployment_of_an_alias_follows_it_through_the_registry_it_is_given(registered):
    result = run(
        "deploy", "models:/diabetes@champion", "--target", "kubernetes", "--dry-run",
        "--registry-uri", "http://quayside.mlops.svc:5000", "--registry-token-secret", "registry-token",
        "--follow-interval", "30", env=registered,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    env = _container_env(result.stdout)
    assert env["MODEL_SOURCE"] == "models:/diabetes@champion"
    assert env["QUAYSIDE_REGISTRY_URI"] == "http://quayside.mlops.svc:5000"
    assert env["FOLLOW_INTERVAL"] == "30"
    assert env["MODEL_VERSION"] == "1"
    assert env["QUAYSIDE_TOKEN"] == {"secretKeyRef": {"name": "registry-token", "key": "token"}}


def test_without_a_registry_or_with_a_fixed_version_the_deployment_follows_nothing(registered):
    alias = run("deploy", "models:/diabetes@champion", "--target", "kubernetes", "--dry-run", env=registered)
    assert alias.returncode == 0, alias.stderr
    assert "give --registry-uri" in alias.stderr
    assert "MODEL_SOURCE" not in _container_env(alias.stdout)
    fixed = run(
        "deploy", "models:/diabetes/1", "--target", "kubernetes", "--dry-run",
        "--registry-uri", "http://quayside.mlops.svc:5000", env=registered,
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    assert "MODEL_SOURCE" not in _container_env(fixed.stdout)
    bad = run(
        "deploy", "models:/diabetes@champion", "--target", "kubernetes", "--dry-run",
        "--registry-uri", "quayside.mlops:5000", env=registered,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: --registry-uri must be the http(s)://")
