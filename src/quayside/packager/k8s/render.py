"""Kubernetes manifests of a model deployment, rendered from templates; pure, no cluster needed.

A deployment ``NAME`` is a Deployment ``NAME`` (track ``stable``), a Service (ports
``http`` and, unless off, ``grpc``) and a PodDisruptionBudget selecting every pod of ``NAME``, and, with ``max_replicas``,
an autoscaling/v2 HorizontalPodAutoscaler on CPU (the Deployment then leaves
``replicas`` to it). A canary is a second Deployment ``NAME-canary`` (track
``canary``) behind the same Service: traffic splits by the replica counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from quayside.errors import InvalidNameError, UsageError
from quayside.names import DNS_LABEL_PATTERN, DNS_LABEL_RULE, check_dns_label, shown
from quayside.packager.docker.context import UID
from quayside.packager.labels import (
    KUBE_IMAGE_ANNOTATION,
    KUBE_MODEL_DIGEST_ANNOTATION,
    KUBE_MODEL_LABEL,
    KUBE_MODEL_VERSION_LABEL,
    KUBE_TRACK_LABEL,
)

Manifest = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_DEPLOYMENT_NAME = 56
"""A DNS label has 63 characters; 7 are kept for ``-canary``."""
DNS_SUBDOMAIN_LENGTH = 253
AUTH_TOKEN_DIR = "/var/run/secrets/quayside"
FOLLOWING_VARIABLES = ("MODEL_SOURCE", "QUAYSIDE_REGISTRY_URI", "FOLLOW_INTERVAL")
"""What a model container is told to follow a registry URI by; a promoted canary keeps them."""
AUTH_TOKEN_KEY = "token"
"""The key of the token in the Secret: ``kubectl create secret generic NAME --from-file=token=FILE``."""


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything a model deployment on Kubernetes is rendered from."""

    name: str
    image: str
    model_name: str
    model_digest: str
    model_version: str | None = None
    namespace: str = "default"
    port: int = 8080
    service_port: int = 80
    grpc_port: int = 8081
    """The gRPC Open Inference Protocol's port, in the container and on the Service; 0: REST only."""
    workers: int = 1
    replicas: int = 2
    cpu: str = "1"
    memory: str = "512Mi"
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_cpu: int = 70
    grace_period_s: int = 30
    auth_token_secret: str | None = None
    """A Secret (key ``token``) whose token the server requires on inference and metadata routes."""
    environment: tuple[tuple[str, str], ...] = ()
    """More variables for the model container: what it follows (``MODEL_SOURCE``, ``QUAYSIDE_REGISTRY_URI``,
    ``FOLLOW_INTERVAL``), from :func:`quayside.compose.following.following_environment`."""
    registry_token_secret: str | None = None
    """A Secret (key ``token``) holding the API token the container reads the registry with (``QUAYSIDE_TOKEN``)."""

    def __post_init__(self) -> None:
        check_deployment_name(self.name)
        check_dns_label("namespace", self.namespace)
        if self.auth_token_secret is not None:
            check_secret_name(self.auth_token_secret)
        if self.registry_token_secret is not None:
            check_secret_name(self.registry_token_secret, option="--registry-token-secret")
        if not 0 <= self.grpc_port <= 65535 or self.grpc_port in (self.port, self.service_port):
            raise UsageError(
                f"the gRPC port must be 1-65535 (0: off) and differ from the HTTP ports, not {self.grpc_port}"
            )
        if self.max_replicas is not None and (self.min_replicas or 1) > self.max_replicas:
            raise UsageError(
                f"--min-replicas {self.min_replicas} is above --max-replicas {self.max_replicas}"
            )


def check_secret_name(name: str, *, option: str = "--auth-token-secret") -> str:
    """A Secret's name: a DNS subdomain (labels of lower-case letters, digits and '-', joined by '.')."""
    if len(name) > DNS_SUBDOMAIN_LENGTH or not all(DNS_LABEL_PATTERN.fullmatch(p) for p in name.split(".")):
        raise InvalidNameError(
            f"{option} {shown(name)} is not a Kubernetes Secret name: {DNS_LABEL_RULE}, "
            f"in labels joined by '.', at most {DNS_SUBDOMAIN_LENGTH} characters"
        )
    return name


def check_deployment_name(name: str) -> str:
    """A deployment name: a DNS label short enough to take ``-canary`` (pass --name to choose another)."""
    try:
        return check_dns_label("deployment", name, max_length=MAX_DEPLOYMENT_NAME)
    except InvalidNameError as e:
        raise InvalidNameError(f"{e.message}; 7 characters are kept for '-canary'; pass --name") from None


def canary_split(total: int, percent: int) -> tuple[int, int]:
    """(stable, canary) replicas out of ``total`` for a canary taking ``percent`` of them, each at least 1."""
    if not 0 < percent < 100:
        raise UsageError(f"--canary must be between 1 and 99 percent, not {percent}")
    canary = min(max(1, round(total * percent / 100)), max(total - 1, 1))
    return max(1, total - canary), canary


def label_value(value: str) -> str:
    """A string made a valid label value (63 characters of [A-Za-z0-9._-], alphanumeric at both ends)."""
    return _LABEL_VALUE.sub("-", value)[:63].strip("-._")


def _labels(spec: DeploymentSpec, track: str) -> dict[str, str]:
    labels = {
        NAME_LABEL: spec.name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "quayside",
        KUBE_MODEL_LABEL: label_value(spec.model_name),
        KUBE_TRACK_LABEL: track,
    }
    if spec.model_version:
        labels[KUBE_MODEL_VERSION_LABEL] = label_value(spec.model_version)
    return labels


def _annotations(spec: DeploymentSpec) -> dict[str, str]:
    # Label values stop at 63 characters; the digest and the image go in annotations.
    return {KUBE_MODEL_DIGEST_ANNOTATION: spec.model_digest, KUBE_IMAGE_ANNOTATION: spec.image}


_SURROGATE_PAIR = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def yaml_quote(value: Any) -> str:
    """``value`` as a YAML flow value (JSON, ASCII only) that reads back exactly, whatever its characters.

    JSON writes a character beyond U+FFFF as two ``\\u`` surrogates, which YAML reads as two
    broken characters; YAML's own ``\\U`` escape takes it whole.
    """

    def whole(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group()  # an escaped backslash, kept as it is
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    return _SURROGATE_PAIR.sub(whole, json.dumps(value))


def _template(name: str) -> Any:
    import jinja2  # a core dependency, imported here to keep `import quayside` fast

    text = resources.files(__package__).joinpath(f"templates/{name}.yaml.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    env.filters["tojson"] = yaml_quote  # Jinja's own is for HTML (it escapes <, >, & and ')
    return env.from_string(text)


def _render(template: str, **values: Any) -> Manifest:
    return yaml.safe_load(_template(template).render(**values))


def render_yaml_template(template: str, **values: Any) -> Manifest:
    """The manifest ``templates/<template>.yaml.j2`` renders from ``values`` (for the server's renderer)."""
    return _render(template, **values)


def render_deployment(
    spec: DeploymentSpec, *, track: str = "stable", replicas: int | None = None
) -> Manifest:
    """The Deployment of one track; ``replicas=None`` with an HPA leaves the count to the HPA."""
    labels = _labels(spec, track)
    autoscaled = spec.max_replicas is not None and track == "stable"
    return _render(
        "deployment",
        deployment_name=spec.name if track == "stable" else f"{spec.name}-{track}",
        namespace=spec.namespace,
        labels=labels,
        annotations=_annotations(spec),
        selector={NAME_LABEL: spec.name, KUBE_TRACK_LABEL: track},
        replicas=None if autoscaled and replicas is None else (replicas or spec.replicas),
        termination_grace_s=spec.grace_period_s + 10,
        uid=UID,
        image=spec.image,
        port=spec.port,
        grpc_port=spec.grpc_port,
        workers=spec.workers,
        model_version=spec.model_version,
        cpu=spec.cpu,
        memory=spec.memory,
        auth_token_secret=spec.auth_token_secret,
        auth_token_dir=AUTH_TOKEN_DIR,
        auth_token_key=AUTH_TOKEN_KEY,
        auth_token_path=f"{AUTH_TOKEN_DIR}/{AUTH_TOKEN_KEY}",
        environment=dict(spec.environment),
        registry_token_secret=spec.registry_token_secret,
    )


def _shared(spec: DeploymentSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "service_labels": {NAME_LABEL: spec.name, "app.kubernetes.io/managed-by": "quayside"},
        "service_selector": {NAME_LABEL: spec.name},
    }


def render_service(spec: DeploymentSpec) -> Manifest:
    return _render("service", service_port=spec.service_port, grpc_port=spec.grpc_port, **_shared(spec))


def render_pdb(spec: DeploymentSpec) -> Manifest:
    return _render("pdb", **_shared(spec))


def render_hpa(spec: DeploymentSpec) -> Manifest:
    if spec.max_replicas is None:
        raise UsageError("an autoscaler needs --max-replicas")
    return _render(
        "hpa",
        min_replicas=spec.min_replicas or min(spec.replicas, spec.max_replicas),
        max_replicas=spec.max_replicas,
        target_cpu=spec.target_cpu,
        **_shared(spec),
    )


def render_manifests(spec: DeploymentSpec) -> list[Manifest]:
    """A plain deployment: Deployment, Service, PodDisruptionBudget, and the HPA when autoscaled."""
    manifests = [render_deployment(spec), render_service(spec), render_pdb(spec)]
    if spec.max_replicas is not None:
        manifests.append(render_hpa(spec))
    return manifests


def render_canary(spec: DeploymentSpec, percent: int) -> tuple[Manifest, int]:
    """The canary Deployment of ``spec`` (the new image), and the replicas the stable one keeps.

    Both sit behind the Service, which selects on the name only, so the canary gets
    about ``percent`` of the requests. The stable Deployment keeps its own image;
    the caller scales it to the returned count.
    """
    total = spec.max_replicas or spec.replicas
    stable, canary = canary_split(total, percent)
    return render_deployment(spec, track="canary", replicas=canary), stable


def promoted(spec: DeploymentSpec, canary: Manifest) -> DeploymentSpec:
    """The stable spec that takes over the canary's image (and the model it serves)."""
    annotations = canary["metadata"].get("annotations", {})
    labels = canary["metadata"].get("labels", {})
    (container,) = canary["spec"]["template"]["spec"]["containers"]
    environment = tuple(
        (variable["name"], variable["value"])
        for variable in container.get("env", [])
        if variable["name"] in FOLLOWING_VARIABLES and "value" in variable
    )
    return replace(
        spec,
        image=annotations.get(KUBE_IMAGE_ANNOTATION, spec.image),
        model_digest=annotations.get(KUBE_MODEL_DIGEST_ANNOTATION, spec.model_digest),
        model_version=labels.get(KUBE_MODEL_VERSION_LABEL, spec.model_version),
        environment=environment or spec.environment,
    )


def to_yaml(manifests: list[Manifest]) -> str:
    """A multi-document YAML stream, as ``kubectl apply -f`` takes."""
    return yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True)
