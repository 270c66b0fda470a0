"""Applying rendered manifests to a cluster with the official ``kubernetes`` client.

Server-side apply (field manager ``quayside``) makes re-applying idempotent and
leaves fields other managers own (an HPA's replica count) alone. Errors from the
client are translated here: a user sees what to do, never an ApiException dump.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quayside.errors import InvalidStateError, MissingExtraError, NotFoundError, UnavailableError

Log = Callable[[str], None]
FIELD_MANAGER = "quayside"


def _kubernetes() -> Any:
    try:
        import kubernetes
    except ImportError as e:
        raise MissingExtraError("deploy", "deploying to Kubernetes") from e
    return kubernetes


def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An API client from the in-cluster service account, or a kubeconfig (``$KUBECONFIG``, ``~/.kube/config``)."""
    kubernetes = _kubernetes()
    from kubernetes.config.config_exception import ConfigException

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            kubernetes.config.load_incluster_config()
            return kubernetes.client.ApiClient()
        except ConfigException:
            pass  # not a usable service account after all: try a kubeconfig
    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    first = path.split(os.pathsep)[0]
    if not Path(first).expanduser().is_file():
        raise UnavailableError(
            f"no Kubernetes cluster configured: no kubeconfig at {first} and not running inside a cluster; "
            "set KUBECONFIG (or --kubeconfig) to a cluster's config, or print the manifests with --dry-run"
        )
    try:
        return kubernetes.config.new_client_from_config(config_file=path, context=context)
    except (ConfigException, ValueError, TypeError, OSError) as e:
        raise UnavailableError(f"the kubeconfig at {first} cannot be used: {e}") from None


def _describe(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def apply_manifests(api_client: Any, manifests: list[dict[str, Any]], *, log: Log) -> None:
    """Server-side apply each manifest, in order."""
    kubernetes = _kubernetes()
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient

    try:
        dynamic = DynamicClient(api_client)
        for manifest in manifests:
            resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
            resource.server_side_apply(
                body=manifest,
                name=manifest["metadata"]["name"],
                namespace=manifest["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
            log(f"applied {_describe(manifest)}")
    except ApiException as e:
        raise InvalidStateError(f"the cluster refused the manifests: {e.status} {e.reason}") from None
    except (kubernetes.client.exceptions.OpenApiException, OSError) as e:
        raise UnavailableError(f"the cluster cannot be reached: {type(e).__name__}: {e}") from None
    except Exception as e:
        if type(e).__module__.startswith(("urllib3", "kubernetes")):
            raise UnavailableError(f"the cluster cannot be reached: {type(e).__name__}: {e}") from None
        raise


def read_deployment(api_client: Any, namespace: str, name: str) -> dict[str, Any] | None:
    kubernetes = _kubernetes()
    from kubernetes.client.exceptions import ApiException

    apps = kubernetes.client.AppsV1Api(api_client)
    try:
        return api_client.sanitize_for_serialization(apps.read_namespaced_deployment(name, namespace))
    except ApiException as e:
        if e.status == 404:
            return None
        raise InvalidStateError(f"cannot read Deployment/{name}: {e.status} {e.reason}") from None


def scale_deployment(api_client: Any, namespace: str, name: str, replicas: int) -> None:
    kubernetes = _kubernetes()
    from kubernetes.client.exceptions import ApiException

    apps = kubernetes.client.AppsV1Api(api_client)
    try:
        apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})
    except ApiException as e:
        raise InvalidStateError(f"cannot scale Deployment/{name}: {e.status} {e.reason}") from None


def delete_deployment(api_client: Any, namespace: str, name: str) -> None:
    kubernetes = _kubernetes()
    from kubernetes.client.exceptions import ApiException

    try:
        kubernetes.client.AppsV1Api(api_client).delete_namespaced_deployment(name, namespace)
    except ApiException as e:
        if e.status == 404:
            raise NotFoundError(f"no Deployment/{name} in namespace {namespace}") from None
        raise InvalidStateError(f"cannot delete Deployment/{name}: {e.status} {e.reason}") from None


def wait_for_rollout(api_client: Any, namespace: str, name: str, *, timeout_s: float, log: Log) -> None:
    """Until the Deployment's new ReplicaSet is fully updated and available, as ``kubectl rollout status``."""
    last = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        deployment = read_deployment(api_client, namespace, name)
        if deployment is None:
            raise NotFoundError(f"Deployment/{name} disappeared during its rollout")
        progress, done = rollout_progress(deployment)
        if progress != last:
            log(f"Deployment/{name}: {progress}")
            last = progress
        if done:
            return
        time.sleep(2)
    raise InvalidStateError(
        f"Deployment/{name} did not finish rolling out within {timeout_s:.0f} s ({last}); "
        f"kubectl -n {namespace} describe deployment {name} says why"
    )


def rollout_progress(deployment: dict[str, Any]) -> tuple[str, bool]:
    """A line of progress, and whether the rollout is complete (pure: a Deployment in, words out)."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {}) or {}
    wanted = spec.get("replicas", 1)
    generation = deployment.get("metadata", {}).get("generation", 0)
    observed = status.get("observedGeneration", 0)
    updated = status.get("updatedReplicas", 0) or 0
    available = status.get("availableReplicas", 0) or 0
    total = status.get("replicas", 0) or 0
    for condition in status.get("conditions", []) or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            raise InvalidStateError(f"the rollout stalled: {condition.get('message', '')}")
    line = f"{updated}/{wanted} updated, {available} available, {total - updated} old still running"
    done = observed >= generation and updated >= wanted and available >= wanted and total == updated
    return line, done
