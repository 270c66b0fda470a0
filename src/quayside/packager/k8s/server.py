"""Kubernetes manifests of the tracking and registry server itself; pure, no cluster needed.

``quayside deploy server`` is a Deployment of stateless ``quayside server`` replicas, a
Service in front of them and a PodDisruptionBudget. The replicas share only what lives
outside them: the database (PostgreSQL) and the artifact root (an S3 bucket), so the pods
keep nothing but uploads in progress. Whatever is secret comes from Secrets that exist
already, referenced by name and key, never copied into a manifest:

- ``--db-secret`` (key :data:`DB_URL_KEY`): the database URL, as ``QUAYSIDE_DB_URL``;
- ``--session-secret`` (key :data:`SESSION_KEY`): the key signing the web UI's sessions,
  as ``QUAYSIDE_SESSION_SECRET`` (the same on every replica, so a login holds on any);
- ``--s3-secret`` (keys :data:`S3_ACCESS_KEY_ID_KEY`, :data:`S3_SECRET_ACCESS_KEY_KEY`):
  the object store's credentials, as ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``;
  leave it out where the pod's service account is given them (IRSA, workload identity).

The image must hold ``quayside[postgres,s3]`` with ``quayside`` on its ``PATH``, runnable
as the image user :data:`~quayside.packager.docker.context.UID`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from quayside.errors import UsageError
from quayside.names import check_dns_label
from quayside.packager.docker.context import UID
from quayside.packager.k8s.render import NAME_LABEL, Manifest, check_secret_name, render_yaml_template
from quayside.version import __version__

DB_URL_KEY = "url"
"""The key of the database URL in ``--db-secret``:
``kubectl create secret generic quayside-db --from-literal=url=postgresql+psycopg://USER:PASSWORD@HOST/DB``."""
SESSION_KEY = "secret"
"""The key of the session key in ``--session-secret``:
``kubectl create secret generic quayside-session --from-literal=secret=$(openssl rand -base64 48)``."""
S3_ACCESS_KEY_ID_KEY = "access-key-id"
S3_SECRET_ACCESS_KEY_KEY = "secret-access-key"
"""The keys of ``--s3-secret``: ``kubectl create secret generic quayside-s3
--from-literal=access-key-id=... --from-literal=secret-access-key=...``."""
HOME = "/var/lib/quayside"
"""QUAYSIDE_HOME in the pod: an emptyDir for uploads in progress and caches."""
READY_PROBE_TIMEOUT_S = 5
"""The readiness probe's timeout: above the server's own 2 s per check (database and store, side by side)."""
COMPONENT = "tracking-server"


@dataclass(frozen=True)
class ServerSpec:
    """Everything the server's deployment on Kubernetes is rendered from."""

    image: str
    artifact_root: str
    """``s3://bucket[/prefix]``: every replica must see the same artifacts."""
    name: str = "quayside-server"
    namespace: str = "default"
    replicas: int = 2
    workers: int = 1
    """``quayside server --workers`` in each pod."""
    port: int = 5000
    service_port: int = 80
    cpu: str = "1"
    memory: str = "1Gi"
    scratch_size: str = "4Gi"
    """The size limit of the pod's QUAYSIDE_HOME (uploads in progress are spooled there)."""
    grace_period_s: int = 30
    db_secret: str = "quayside-db"
    session_secret: str = "quayside-session"
    s3_secret: str | None = None
    s3_endpoint_url: str | None = None
    """``QUAYSIDE_S3_ENDPOINT_URL`` for an S3 API other than AWS's (MinIO, Ceph, R2); not a secret."""
    s3_region: str | None = None
    auth: bool = True
    """Require credentials (``--auth``); off means ``--insecure-no-auth``: anyone reaching the Service
    may read and change everything."""

    def __post_init__(self) -> None:
        check_dns_label("deployment", self.name)
        check_dns_label("namespace", self.namespace)
        check_secret_name(self.db_secret, option="--db-secret")
        check_secret_name(self.session_secret, option="--session-secret")
        if self.s3_secret is not None:
            check_secret_name(self.s3_secret, option="--s3-secret")
        check_shared_artifact_root(self.artifact_root)
        if self.s3_endpoint_url is not None and urlsplit(self.s3_endpoint_url).scheme not in (
            "http",
            "https",
        ):
            raise UsageError(
                f"--s3-endpoint must be an http:// or https:// URL, not '{self.s3_endpoint_url}'"
            )
        for option, value in (("--replicas", self.replicas), ("--workers", self.workers)):
            if value < 1:
                raise UsageError(f"{option} must be 1 or more, not {value}")
        if not 1 <= self.port <= 65535 or not 1 <= self.service_port <= 65535:
            raise UsageError("the server's ports must be 1-65535")


def check_shared_artifact_root(root: str) -> str:
    """An artifact root every replica sees: an S3 bucket (a pod's own directory is seen by it alone)."""
    parts = urlsplit(root)
    if parts.scheme != "s3" or not parts.netloc:
        raise UsageError(
            f"--artifact-root must be s3://bucket[/prefix] so that every replica sees the same artifacts, "
            f"not '{root}'"
        )
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise UsageError(
            "--artifact-root holds only a bucket and a prefix: credentials go in --s3-secret, "
            "the endpoint in --s3-endpoint"
        )
    return root


def _labels(spec: ServerSpec) -> dict[str, str]:
    return {
        NAME_LABEL: spec.name,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": "quayside",
        "app.kubernetes.io/version": __version__,
    }


def _from_secret(variable: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def server_env(spec: ServerSpec) -> list[dict[str, Any]]:
    """The container's environment: plain settings as values, everything secret as Secret references."""
    env: list[dict[str, Any]] = [
        {"name": "QUAYSIDE_HOME", "value": HOME},
        {"name": "QUAYSIDE_SERVER_HOST", "value": "0.0.0.0"},
        {"name": "QUAYSIDE_SERVER_PORT", "value": str(spec.port)},
        {"name": "QUAYSIDE_ARTIFACT_ROOT", "value": spec.artifact_root},
    ]
    if spec.s3_endpoint_url is not None:
        env.append({"name": "QUAYSIDE_S3_ENDPOINT_URL", "value": spec.s3_endpoint_url})
    if spec.s3_region is not None:
        env.append({"name": "AWS_DEFAULT_REGION", "value": spec.s3_region})
    env.append(_from_secret("QUAYSIDE_DB_URL", spec.db_secret, DB_URL_KEY))
    env.append(_from_secret("QUAYSIDE_SESSION_SECRET", spec.session_secret, SESSION_KEY))
    if spec.s3_secret is not None:
        env.append(_from_secret("AWS_ACCESS_KEY_ID", spec.s3_secret, S3_ACCESS_KEY_ID_KEY))
        env.append(_from_secret("AWS_SECRET_ACCESS_KEY", spec.s3_secret, S3_SECRET_ACCESS_KEY_KEY))
    return env


def server_command(spec: ServerSpec) -> list[str]:
    """What each pod runs; the host and port come from the environment."""
    access = ["--auth"] if spec.auth else ["--no-auth", "--insecure-no-auth"]
    return ["quayside", "server", "--workers", str(spec.workers), *access]


def render_server_deployment(spec: ServerSpec) -> Manifest:
    labels = _labels(spec)
    return render_yaml_template(
        "server-deployment",
        name=spec.name,
        namespace=spec.namespace,
        labels=labels,
        annotations={"quayside.io/image": spec.image},
        selector={NAME_LABEL: spec.name},
        replicas=spec.replicas,
        termination_grace_s=spec.grace_period_s + 10,
        uid=UID,
        image=spec.image,
        command=server_command(spec),
        port=spec.port,
        env=server_env(spec),
        cpu=spec.cpu,
        memory=spec.memory,
        ready_timeout_s=READY_PROBE_TIMEOUT_S,
        home=HOME,
        scratch_size=spec.scratch_size,
    )


def _shared(spec: ServerSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "service_labels": {k: v for k, v in _labels(spec).items() if k != "app.kubernetes.io/version"},
        "service_selector": {NAME_LABEL: spec.name},
    }


def render_server_manifests(spec: ServerSpec) -> list[Manifest]:
    """The server's Deployment, its Service (HTTP only) and its PodDisruptionBudget."""
    return [
        render_server_deployment(spec),
        render_yaml_template("service", service_port=spec.service_port, grpc_port=0, **_shared(spec)),
        render_yaml_template("pdb", **_shared(spec)),
    ]
