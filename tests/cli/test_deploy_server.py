"""``quayside deploy server``: the server's manifests from the command line, and ``deploy MODEL`` as before."""

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

ROOT = "s3://team-artifacts/quayside"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("QUAYSIDE_")}
    return subprocess.run(
        [sys.executable, "-m", "quayside", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=300,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_dry_run_prints_the_servers_manifests_and_they_validate():
    result = run(
        "deploy", "server", "--target", "kubernetes", "--replicas", "2", "--dry-run", "-o", "yaml",
        "--artifact-root", ROOT, "--s3-secret", "team-s3", "--namespace", "mlops",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifests = [m for m in yaml.safe_load_all(result.stdout) if m]
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "PodDisruptionBudget"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
        assert manifest["metadata"]["namespace"] == "mlops"
    deployment = manifests[0]
    assert deployment["spec"]["replicas"] == 2
    env = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["QUAYSIDE_ARTIFACT_ROOT"]["value"] == ROOT
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "team-s3",
        "key": "secret-access-key",
    }


def test_the_artifact_root_defaults_to_the_setting():
    result = run("deploy", "server", "--dry-run", env={"QUAYSIDE_ARTIFACT_ROOT": "s3://from-env/p"})
    assert result.returncode == 0, result.stderr
    deployment = next(yaml.safe_load_all(result.stdout))
    env = {v["name"]: v.get("value") for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["QUAYSIDE_ARTIFACT_ROOT"] == "s3://from-env/p"


def test_no_secret_value_from_this_machine_lands_in_the_manifests():
    secrets = {
        "QUAYSIDE_DB_URL": "postgresql+psycopg://admin:hunter2-db@db.internal/quayside",
        "QUAYSIDE_SESSION_SECRET": "session-secret-never-shown",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-never-shown",
        "AWS_ACCESS_KEY_ID": "AKIANEVERSHOWN",
    }
    result = run("deploy", "server", "--dry-run", "--artifact-root", ROOT, env=secrets)
    assert result.returncode == 0, result.stderr
    for value in [*secrets.values(), "hunter2-db", "db.internal"]:
        assert value not in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--dry-run"], {}, "error: give --artifact-root s3://BUCKET[/PREFIX]"),
        (["--dry-run", "--artifact-root", "/srv/artifacts"], {}, "--artifact-root must be s3://bucket"),
        (["--dry-run"], {"QUAYSIDE_ARTIFACT_ROOT": "/srv/artifacts"}, "--artifact-root must be s3://bucket"),
        (["--target", "docker", "--artifact-root", ROOT], {}, "goes on --target kubernetes"),
        (["-o", "json", "--artifact-root", ROOT], {}, "-o/--output takes 'yaml', not 'json'"),
        (
            ["--dry-run", "--artifact-root", ROOT, "--db-secret", "DB"],
            {},
            "--db-secret 'DB' is not a Kubernetes",
        ),
        (["--dry-run", "--artifact-root", ROOT, "--name", "Server"], {}, "DNS label"),
        (
            ["--dry-run", "--artifact-root", ROOT, "--replicas", "0"],
            {},
            "--replicas must be 1 or more, not 0",
        ),
        (["--dry-run", "--artifact-root", ROOT, "--workers", "0"], {}, "--workers must be 1 or more, not 0"),
    ],
    ids=[
        "no-root",
        "local-root",
        "local-root-from-env",
        "docker",
        "json",
        "bad-secret",
        "bad-name",
        "no-replicas",
        "no-workers",
    ],
)
def test_bad_input_is_one_error_line(args, env, message):
    assert message in one_error_line(run("deploy", "server", *args, env=env))


def test_applying_without_a_kubeconfig_is_one_clear_line(tmp_path):
    env = {"KUBECONFIG": str(tmp_path / "missing-kubeconfig"), "HOME": str(tmp_path)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = run("deploy", "server", "--artifact-root", ROOT, "--image", "reg/quayside-server:1", env=env)
    assert one_error_line(result) == (
        f"error: no Kubernetes cluster configured: no kubeconfig at {tmp_path / 'missing-kubeconfig'} and not "
        "running inside a cluster; set KUBECONFIG (or --kubeconfig) to a cluster's config, or print the "
        "manifests with --dry-run"
    )


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, diabetes) -> Path:
    """A folder holding a model package literally named ``server``."""
    X, y = diabetes
    X = X.astype(np.float32)
    folder = tmp_path_factory.mktemp("models")
    quayside.save_model(Ridge().fit(X, y), folder / "server", input_example=X[:10], to_onnx=True, name="srv")
    return folder


def test_a_model_directory_named_server_deploys_as_a_model_when_given_as_a_path(models_dir):
    result = run("deploy", "./server", "--target", "kubernetes", "--dry-run", cwd=models_dir)
    assert result.returncode == 0, result.stderr
    deployment = next(yaml.safe_load_all(result.stdout))
    assert deployment["metadata"]["name"] == "srv"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "model-server"


def test_deploy_model_options_first_still_reach_the_model_command(models_dir):
    result = run(
        "deploy", "--target", "kubernetes", "--dry-run", str(models_dir / "server"), "--replicas", "3"
    )
    assert result.returncode == 0, result.stderr
    assert next(yaml.safe_load_all(result.stdout))["spec"]["replicas"] == 3


def test_deploy_help_is_the_model_commands_and_names_the_server_subcommand():
    result = run("deploy", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "deploy [OPTIONS] [model_uri]" in result.stdout
    assert "--canary" in result.stdout and "quayside deploy server --help" in result.stdout
    assert "./server" in result.stdout
    server_help = run("deploy", "server", "--help", env={"COLUMNS": "200"})
    assert "deploy server [OPTIONS]" in server_help.stdout
    assert "--db-secret" in server_help.stdout and "--canary" not in server_help.stdout
