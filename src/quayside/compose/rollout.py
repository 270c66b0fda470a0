"""Deployments of a model: a container on this host's Docker engine, or a Deployment on Kubernetes.

A registered version with a pushed build that passed its checks is deployed by that
build's repository digest (``image@sha256:...``), so what runs is exactly the image
that passed its smoke test (and, with ``promote --image``, its load test); otherwise
by its tag. Docker: the image is pulled by digest, or built when its tag does not hold
the package yet, and the new container starts beside the previous one of the same
name before that one stops.
Kubernetes: manifests are rendered from a :class:`~quayside.packager.k8s.render.DeploymentSpec`
(pure, so they can be printed instead) and applied server-side; a canary runs beside
the stable Deployment, and promoting it rolls the stable one to the canary's image.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose import Log, no_log
from quayside.compose.images import ensure_image, ensure_pulled, recorded_image
from quayside.compose.models import ModelSource
from quayside.errors import NotFoundError
from quayside.names import check_dns_label, check_portable_name
from quayside.packager.labels import KUBE_MODEL_LABEL

if TYPE_CHECKING:
    from quayside.compose.images import CheckedBuild
    from quayside.packager.docker.containers import Deployment
    from quayside.packager.k8s.render import DeploymentSpec

CONNECTION_MIGRATION_NOTE = (
    "note: net.ipv4.tcp_migrate_req is 0; a connection queued on the old container's listener in "
    "the instant it closes can be reset (sysctl -w net.ipv4.tcp_migrate_req=1 closes that window)"
)


@dataclass(frozen=True)
class DockerRollout:
    """A container deployment that is serving: what runs, and the image build it needed (if any)."""

    deployment: Deployment
    build: CheckedBuild | None
    """The build it needed (None: the image was there, or was pulled by its recorded digest)."""


def deploy_docker(
    source: ModelSource,
    *,
    name: str | None = None,
    port: int = 8080,
    grpc_port: int | None = None,
    workers: int = 1,
    image: str | None = None,
    base_image: str,
    grace_period_s: float = 30,
    auth_token_file: Path | None = None,
    environment: Mapping[str, str] | None = None,
    log: Log = no_log,
) -> DockerRollout:
    """Run ``source`` as the Docker deployment ``name`` (default: the model's), replacing the previous one.

    The image is ``image``; by default the recorded build's repository digest (a registered
    version built with ``--push``, pulled when missing), else :meth:`ModelSource.default_tag`,
    built when it does not hold this package.
    With ``auth_token_file``, the container mounts it read-only and requires its token on inference
    and metadata routes (checked here first: a missing or empty file stops the deploy before any build).
    ``environment`` goes into the container (:func:`~quayside.compose.following.following_environment`).
    """
    from quayside.packager.docker.build import docker_client
    from quayside.packager.docker.containers import connection_migration_enabled, deploy_container
    from quayside.packager.docker.context import UID
    from quayside.serving.auth import read_token_file

    if auth_token_file is not None:
        read_token_file(auth_token_file)
        mode = auth_token_file.stat()
        if mode.st_uid != UID and not mode.st_mode & stat.S_IROTH:
            log(
                f"note: the container runs as UID {UID}; it can read {auth_token_file} only if that user may "
                f"(chown {UID} {auth_token_file}, or a group or mode that lets it)"
            )
    deployment_name = check_portable_name("deployment", name or source.manifest.name)
    client = docker_client()
    build = None
    record = recorded_image(source) if image is None else None
    if record is not None and record.repo_digest is not None:
        tag = record.repo_digest
        log(f"deploying build {record.id} by its digest {tag}")
        ensure_pulled(client, tag, log=log)
    else:
        tag = image or source.default_tag()
        build = ensure_image(client, source, tag=tag, base_image=base_image, log=log)
    if connection_migration_enabled() is False:
        log(CONNECTION_MIGRATION_NOTE)
    deployment = deploy_container(
        client,
        image=tag,
        name=deployment_name,
        port=port,
        grpc_port=grpc_port,
        workers=workers,
        grace_period_s=grace_period_s,
        log=log,
        auth_token_file=auth_token_file,
        environment=environment,
    )
    return DockerRollout(deployment, build)


def remove_docker_deployment(name: str, *, grace_period_s: float = 30, log: Log = no_log) -> int:
    """Stop and remove the Docker deployment ``name`` gracefully; returns how many containers went."""
    from quayside.packager.docker.build import docker_client
    from quayside.packager.docker.containers import remove_deployment

    check_portable_name("deployment", name)
    client = docker_client()
    return remove_deployment(client, name, grace_period_s=grace_period_s, log=log)


def docker_deployments() -> list[Deployment]:
    """The Docker deployments on this host (containers labelled by ``quayside deploy``)."""
    from quayside.packager.docker.build import docker_client
    from quayside.packager.docker.containers import deployments

    return deployments(docker_client())


def kubernetes_name(text: str) -> str:
    """A model name as a Deployment name: lowercase DNS-label characters, room left for ``-canary``."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:56].strip("-") or "model"


def deployment_spec(
    source: ModelSource, *, name: str | None = None, image: str | None = None, **sizes: Any
) -> DeploymentSpec:
    """The spec ``source`` deploys from: named after the model; its image the given one, else the
    recorded build's repository digest (a pushed build of a registered version), else its tag.

    ``sizes`` are the other :class:`DeploymentSpec` fields (namespace, port, replicas, cpu, ...).
    """
    from quayside.packager.k8s.render import DeploymentSpec

    if image is None:
        record = recorded_image(source)
        image = record.repo_digest if record is not None else None
    return DeploymentSpec(
        name=name or kubernetes_name(source.manifest.name),
        image=image or source.default_tag(),
        model_name=source.registered_name or source.manifest.name,
        model_digest=source.manifest.digest(),
        model_version=source.version,
        **sizes,
    )


@dataclass(frozen=True)
class KubernetesPlan:
    """The manifests a deployment applies; for a canary, also what the stable Deployment scales to."""

    spec: DeploymentSpec
    manifests: list[dict[str, Any]] = field(default_factory=list)
    canary_percent: int | None = None
    stable_replicas: int | None = None

    @property
    def target(self) -> str:
        """The Deployment whose rollout is waited for."""
        return self.spec.name if self.canary_percent is None else f"{self.spec.name}-canary"


def plan_deployment(spec: DeploymentSpec, *, canary: int | None = None) -> KubernetesPlan:
    """Render the manifests of ``spec`` (pure): the whole set, or with ``canary`` percent only the canary."""
    from quayside.packager.k8s.render import render_canary, render_manifests

    if canary is None:
        return KubernetesPlan(spec, render_manifests(spec))
    canary_deployment, stable_replicas = render_canary(spec, canary)
    return KubernetesPlan(spec, [canary_deployment], canary, stable_replicas)


def apply_deployment(
    plan: KubernetesPlan, *, kubeconfig: str | None = None, timeout_s: float = 300, log: Log = no_log
) -> None:
    """Apply ``plan`` server-side and wait for its rollout; a canary needs the stable Deployment beside it."""
    from quayside.packager.k8s import apply as k8s

    spec = plan.spec
    api = k8s.connect(kubeconfig)
    if plan.stable_replicas is not None:
        if k8s.read_deployment(api, spec.namespace, spec.name) is None:
            raise NotFoundError(
                f"no stable Deployment/{spec.name} in namespace {spec.namespace} to put a canary beside; "
                "deploy without --canary first"
            )
        k8s.apply_manifests(api, plan.manifests, log=log)
        if spec.max_replicas is None:  # an HPA sizes the stable Deployment itself
            k8s.scale_deployment(api, spec.namespace, spec.name, plan.stable_replicas)
    else:
        k8s.apply_manifests(api, plan.manifests, log=log)
    k8s.wait_for_rollout(api, spec.namespace, plan.target, timeout_s=timeout_s, log=log)


def promote_canary(
    name: str,
    *,
    namespace: str = "default",
    sizes: Mapping[str, Any] | None = None,
    kubeconfig: str | None = None,
    timeout_s: float = 300,
    apply: bool = True,
    log: Log = no_log,
) -> KubernetesPlan:
    """Roll the stable Deployment ``name`` to the image of ``name-canary``, then remove the canary.

    ``sizes`` are the stable Deployment's other :class:`DeploymentSpec` fields (port,
    replicas, cpu, ...). The canary is read from the cluster either way; with
    ``apply=False`` the manifests are only rendered (for printing) and nothing changes.
    """
    from quayside.packager.k8s import apply as k8s
    from quayside.packager.k8s.render import DeploymentSpec, check_deployment_name, promoted, render_manifests

    check_deployment_name(name)
    check_dns_label("namespace", namespace)
    api = k8s.connect(kubeconfig)
    canary = k8s.read_deployment(api, namespace, f"{name}-canary")
    if canary is None:
        raise NotFoundError(f"no canary Deployment/{name}-canary in namespace {namespace} to promote")
    base = DeploymentSpec(
        name=name,
        image="",
        model_name=canary["metadata"]["labels"].get(KUBE_MODEL_LABEL, name),
        model_digest="",
        namespace=namespace,
        **(sizes or {}),
    )
    spec = promoted(base, canary)
    plan = KubernetesPlan(spec, render_manifests(spec))
    if not apply:
        return plan
    k8s.apply_manifests(api, plan.manifests, log=log)
    k8s.wait_for_rollout(api, namespace, name, timeout_s=timeout_s, log=log)
    k8s.delete_deployment(api, namespace, f"{name}-canary")
    return plan
