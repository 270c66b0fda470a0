"""Rendered Kubernetes manifests validate against the official schemas of a current Kubernetes."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from quayside.errors import UsageError
from quayside.packager.k8s.render import (
    DeploymentSpec,
    canary_split,
    promoted,
    render_canary,
    render_manifests,
    to_yaml,
)

KUBERNETES_VERSION = kubernetes_validate.latest_version()
SPEC = DeploymentSpec(
    name="diabetes",
    image="registry.example/quayside/diabetes:3",
    model_name="diabetes",
    model_digest="9" * 64,
    model_version="3",
    namespace="models",
    replicas=4,
    cpu="500m",
    memory="256Mi",
)
AUTOSCALED = DeploymentSpec(**{**SPEC.__dict__, "min_replicas": 2, "max_replicas": 8, "target_cpu": 60})
REST_ONLY = DeploymentSpec(**{**SPEC.__dict__, "grpc_port": 0})


def validate(manifest: dict) -> None:
    # strict: an unknown field (a typo in a template) fails too.
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def by_kind(manifests: list[dict]) -> dict[str, dict]:
    return {m["kind"]: m for m in manifests}


@pytest.mark.parametrize(
    "manifests",
    [
        pytest.param(render_manifests(SPEC), id="plain"),
        pytest.param(render_manifests(AUTOSCALED), id="hpa-and-pdb"),
        pytest.param([render_canary(SPEC, 25)[0]], id="canary"),
        pytest.param(render_manifests(REST_ONLY), id="rest-only"),
    ],
)
def test_every_rendered_manifest_validates_against_the_official_schema(manifests):
    for manifest in manifests:
        validate(manifest)
    # and the YAML the CLI prints reads back as the same objects
    assert list(yaml.safe_load_all(to_yaml(manifests))) == manifests


def test_the_deployment_probes_the_v2_health_endpoints_and_runs_locked_down():
    deployment = by_kind(render_manifests(SPEC))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["grpc"] == {"port": 8081}  # grpc.health.v1: SERVING once ready
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "256Mi"}
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["replicas"] == 4
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["quayside.io/model"] == "diabetes" and labels["quayside.io/model-version"] == "3"
    assert deployment["metadata"]["annotations"]["quayside.io/model-digest"] == "9" * 64
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"PORT": "8080", "GRPC_PORT": "8081", "WORKERS": "1", "MODEL_VERSION": "3"}


def test_the_grpc_port_is_a_container_port_and_a_service_port_unless_it_is_off():
    manifests = by_kind(render_manifests(SPEC))
    container = manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "grpc", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    service_ports = {p["name"]: p for p in manifests["Service"]["spec"]["ports"]}
    assert service_ports["grpc"] == {
        "name": "grpc",
        "port": 8081,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "grpc",
    }
    assert service_ports["http"]["port"] == 80
    rest_only = by_kind(render_manifests(REST_ONLY))
    container = rest_only["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert [p["name"] for p in rest_only["Service"]["spec"]["ports"]] == ["http"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert {"name": "GRPC_PORT", "value": "0"} in container["env"]


@pytest.mark.parametrize("grpc_port", [8080, 80, 70000, -1])
def test_a_grpc_port_that_clashes_or_is_out_of_range_is_refused(grpc_port):
    with pytest.raises(UsageError, match="gRPC port"):
        DeploymentSpec(**{**SPEC.__dict__, "grpc_port": grpc_port})


def test_an_autoscaled_deployment_leaves_the_replica_count_to_the_hpa():
    manifests = by_kind(render_manifests(AUTOSCALED))
    assert "replicas" not in manifests["Deployment"]["spec"]
    hpa = manifests["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert manifests["PodDisruptionBudget"]["apiVersion"] == "policy/v1"
    assert "HorizontalPodAutoscaler" not in by_kind(render_manifests(SPEC))


def test_a_canary_sits_behind_the_same_service_with_its_share_of_replicas():
    canary, stable_replicas = render_canary(SPEC, 25)
    service = by_kind(render_manifests(SPEC))["Service"]
    pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert canary["metadata"]["name"] == "diabetes-canary"
    assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())
    assert pod_labels["quayside.io/track"] == "canary"
    assert (stable_replicas, canary["spec"]["replicas"]) == (3, 1)
    assert canary_split(10, 50) == (5, 5) and canary_split(2, 90) == (1, 1) and canary_split(1, 10) == (1, 1)


def test_promoting_takes_the_canarys_image_into_the_stable_deployment():
    canary, _ = render_canary(
        DeploymentSpec(**{**SPEC.__dict__, "image": "reg/diabetes:4", "model_version": "4"}), 10
    )
    stable = by_kind(render_manifests(promoted(SPEC, canary)))["Deployment"]
    validate(stable)
    assert stable["metadata"]["name"] == "diabetes"
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/diabetes:4"
    assert stable["spec"]["template"]["metadata"]["labels"]["quayside.io/model-version"] == "4"


@pytest.mark.parametrize("name", ["Diabetes", "a_b", "x" * 60, "-lead"])
def test_a_name_kubernetes_would_refuse_is_refused_with_the_rule(name):
    with pytest.raises(UsageError, match="DNS label"):
        DeploymentSpec(**{**SPEC.__dict__, "name": name})


TOKENED = DeploymentSpec(**{**SPEC.__dict__, "auth_token_secret": "diabetes-token"})


@pytest.mark.parametrize(
    "manifests",
    [
        pytest.param(render_manifests(TOKENED), id="plain"),
        pytest.param([render_canary(TOKENED, 25)[0]], id="canary"),
    ],
)
def test_a_token_secret_renders_a_read_only_mount_and_the_env_var_and_validates(manifests):
    for manifest in manifests:
        validate(manifest)
    pod = by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["QUAYSIDE_AUTH_TOKEN_FILE"] == "/var/run/secrets/quayside/token"
    assert {"name": "auth-token", "mountPath": "/var/run/secrets/quayside", "readOnly": True} in container[
        "volumeMounts"
    ]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "auth-token"]
    assert volume["secret"]["secretName"] == "diabetes-token"
    assert volume["secret"]["items"] == [{"key": "token", "path": "token"}]
    assert volume["secret"]["defaultMode"] == 0o440  # the pod's group (fsGroup) reads it, no one else
    # The probes hit the health routes and grpc.health.v1, which need no token.
    assert container["readinessProbe"]["grpc"] == {"port": 8081}
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_without_a_token_secret_nothing_is_mounted():
    pod = by_kind(render_manifests(SPEC))["Deployment"]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert "QUAYSIDE_AUTH_TOKEN_FILE" not in {e["name"] for e in pod["containers"][0]["env"]}


def test_promoting_a_canary_keeps_the_token_secret():
    canary, _ = render_canary(TOKENED, 25)
    stable = by_kind(render_manifests(promoted(TOKENED, canary)))["Deployment"]
    assert stable["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"] == "diabetes-token"


@pytest.mark.parametrize("name", ["Diabetes_Token", "-x", "a" * 254, "x/y", ""])
def test_a_secret_name_kubernetes_would_refuse_is_refused(name):
    with pytest.raises(UsageError, match="Secret name"):
        DeploymentSpec(**{**SPEC.__dict__, "auth_token_secret": name})
