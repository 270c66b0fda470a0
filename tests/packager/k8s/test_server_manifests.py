"""The server's own Kubernetes manifests validate against the official schemas and keep secrets in Secrets."""

from __future__ import annotations

import json
from dataclasses import replace

import kubernetes
import kubernetes_validate
import pytest
import yaml

from quayside.errors import UsageError
from quayside.packager.k8s.render import to_yaml
from quayside.packager.k8s.server import ServerSpec, render_server_manifests

KUBERNETES_VERSION = kubernetes_validate.latest_version()
SPEC = ServerSpec(
    image="registry.example/quayside/server:0.1.0",
    artifact_root="s3://team-artifacts/quayside",
    namespace="mlops",
    replicas=3,
    workers=2,
    s3_secret="quayside-s3",
    s3_endpoint_url="http://minio.storage:9000",
    s3_region="eu-west-1",
)
KINDS = ["Deployment", "Service", "PodDisruptionBudget"]


def by_kind(manifests: list[dict]) -> dict[str, dict]:
    return {m["kind"]: m for m in manifests}


def container_of(manifests: list[dict]) -> dict:
    (container,) = by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def env_of(manifests: list[dict]) -> dict[str, dict]:
    return {variable["name"]: variable for variable in container_of(manifests)["env"]}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(SPEC, id="s3-secret-and-endpoint"),
        pytest.param(ServerSpec(image="q:1", artifact_root="s3://b"), id="defaults"),
        pytest.param(replace(SPEC, auth=False, s3_secret=None, replicas=1), id="no-auth-no-s3-secret"),
    ],
)
def test_every_server_manifest_validates_against_the_official_schema(spec):
    manifests = render_server_manifests(spec)
    assert [m["kind"] for m in manifests] == KINDS
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert list(yaml.safe_load_all(to_yaml(manifests))) == manifests


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("Deployment", "V1Deployment"),
        ("Service", "V1Service"),
        ("PodDisruptionBudget", "V1PodDisruptionBudget"),
    ],
)
def test_the_official_client_reads_each_manifest_back_field_for_field(kind, model):
    # The apply path hands these dicts to the kubernetes client; its own models must know every field.
    manifest = by_kind(render_server_manifests(SPEC))[kind]
    client = kubernetes.client.ApiClient()
    api_object = client.deserialize(json.dumps(manifest), model, "application/json")
    assert type(api_object).__name__ == model
    assert client.sanitize_for_serialization(api_object) == manifest


def test_secrets_are_referenced_by_name_and_key_never_copied():
    env = env_of(render_server_manifests(SPEC))
    refs = {name: v["valueFrom"]["secretKeyRef"] for name, v in env.items() if "valueFrom" in v}
    assert refs == {
        "QUAYSIDE_DB_URL": {"name": "quayside-db", "key": "url"},
        "QUAYSIDE_SESSION_SECRET": {"name": "quayside-session", "key": "secret"},
        "AWS_ACCESS_KEY_ID": {"name": "quayside-s3", "key": "access-key-id"},
        "AWS_SECRET_ACCESS_KEY": {"name": "quayside-s3", "key": "secret-access-key"},
    }
    plain = {name: v["value"] for name, v in env.items() if "value" in v}
    assert plain == {
        "QUAYSIDE_HOME": "/var/lib/quayside",
        "QUAYSIDE_SERVER_HOST": "0.0.0.0",
        "QUAYSIDE_SERVER_PORT": "5000",
        "QUAYSIDE_ARTIFACT_ROOT": "s3://team-artifacts/quayside",
        "QUAYSIDE_S3_ENDPOINT_URL": "http://minio.storage:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert "Secret" not in [m["kind"] for m in render_server_manifests(SPEC)]


def test_without_an_s3_secret_the_pod_gets_no_aws_keys():
    env = env_of(render_server_manifests(replace(SPEC, s3_secret=None)))
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["QUAYSIDE_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "quayside-db"


def test_readiness_is_the_dependency_check_and_liveness_the_process_alone():
    container = container_of(render_server_manifests(SPEC))
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    # The server gives each check 2 s; a probe that gave up first would fail a ready pod.
    assert container["readinessProbe"]["timeoutSeconds"] > 2
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"


def test_the_pod_runs_the_server_locked_down_with_its_resources():
    manifests = render_server_manifests(SPEC)
    deployment = by_kind(manifests)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = container_of(manifests)
    assert container["command"] == ["quayside", "server", "--workers", "2", "--auth"]
    assert container["image"] == "registry.example/quayside/server:0.1.0"
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # With a read-only root, QUAYSIDE_HOME (uploads in progress) is a volume of the pod's own.
    assert {"name": "home", "mountPath": "/var/lib/quayside"} in container["volumeMounts"]
    assert {"name": "home", "emptyDir": {"sizeLimit": "4Gi"}} in pod["volumes"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_service_and_the_budget_select_every_server_pod():
    manifests = by_kind(render_server_manifests(SPEC))
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        manifests["Service"]["spec"]["selector"],
        manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector == {"app.kubernetes.io/name": "quayside-server"}
        assert all(pod_labels[k] == v for k, v in selector.items())
    assert manifests["Service"]["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_without_auth_the_server_is_told_it_may_listen_unauthenticated():
    container = container_of(render_server_manifests(replace(SPEC, auth=False)))
    assert container["command"][-2:] == ["--no-auth", "--insecure-no-auth"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"artifact_root": "/data/artifacts"}, "must be s3://bucket"),
        ({"artifact_root": "file:///data"}, "must be s3://bucket"),
        ({"artifact_root": "s3://"}, "must be s3://bucket"),
        ({"artifact_root": "s3://key:secret@bucket"}, "credentials go in --s3-secret"),
        ({"db_secret": "DB_URL"}, "--db-secret 'DB_URL' is not a Kubernetes Secret name"),
        ({"session_secret": "-x"}, "--session-secret '-x' is not a Kubernetes Secret name"),
        ({"s3_secret": "a/b"}, "--s3-secret 'a/b' is not a Kubernetes Secret name"),
        ({"name": "Quayside"}, "DNS label"),
        ({"namespace": "ml_ops"}, "DNS label"),
        ({"replicas": 0}, "--replicas must be 1 or more"),
        ({"workers": 0}, "--workers must be 1 or more"),
        ({"s3_endpoint_url": "minio:9000"}, "--s3-endpoint must be an http"),
    ],
)
def test_a_spec_kubernetes_or_the_replicas_could_not_use_is_refused_with_the_reason(change, message):
    with pytest.raises(UsageError, match=message):
        replace(SPEC, **change)
