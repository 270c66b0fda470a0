"""``quayside deploy`` and ``quayside deployments``: a model behind a port, on Docker or Kubernetes."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import typer

from quayside.cli.build import ModelSource, build_model_image
from quayside.cli.console import err, out, out_raw
from quayside.errors import NotFoundError, UsageError
from quayside.names import check_dns_label, check_portable_name
from quayside.packager.docker.context import DEFAULT_BASE_IMAGE


class Target(StrEnum):
    docker = "docker"
    kubernetes = "kubernetes"


def _ensure_image(client: Any, source: ModelSource, *, tag: str, base_image: str) -> str:
    """The image of ``source``: reused when ``tag`` already holds this package (same digest), else built."""
    from docker.errors import ImageNotFound

    digest = source.manifest.digest()
    try:
        existing = client.images.get(tag)
        if (existing.labels or {}).get("io.quayside.model.digest") == digest:
            err.print(f"image {tag} already holds this model; not rebuilding")
            return tag
    except ImageNotFound:
        pass
    build_model_image(source, tag=tag, base_image=base_image, no_cache=False)
    return tag


def _deploy_docker(
    model_uri: str | None,
    *,
    name: str | None,
    port: int,
    workers: int,
    image: str | None,
    base_image: str,
    down: bool,
    grace_period: float,
) -> None:
    from quayside.packager.docker.build import docker_client
    from quayside.packager.docker.containers import (
        connection_migration_enabled,
        deploy_container,
        remove_deployment,
    )

    if down:
        if not name:
            raise UsageError("--down needs --name: the deployment to remove")
        check_portable_name("deployment", name)
        client = docker_client()
        removed = remove_deployment(client, name, grace_period_s=grace_period, log=err.print)
        out.print(f"removed deployment {name} ({removed} container{'s' if removed != 1 else ''})")
        return
    if model_uri is None:
        raise UsageError("give the MODEL_URI to deploy (or --down with --name)")
    source = ModelSource.resolve(model_uri)
    deployment_name = check_portable_name("deployment", name or source.manifest.name)
    client = docker_client()
    tag = _ensure_image(client, source, tag=image or source.default_tag(), base_image=base_image)
    if connection_migration_enabled() is False:
        err.print(
            "note: net.ipv4.tcp_migrate_req is 0; a connection queued on the old container's listener in "
            "the instant it closes can be reset (sysctl -w net.ipv4.tcp_migrate_req=1 closes that window)"
        )
    deployment = deploy_container(
        client,
        image=tag,
        name=deployment_name,
        port=port,
        workers=workers,
        grace_period_s=grace_period,
        log=err.print,
    )
    out.print(
        f"deployment {deployment.name}: {deployment.model} {deployment.version} from {deployment.image} "
        f"on http://127.0.0.1:{deployment.port} ({deployment.container})"
    )


def deploy(
    model_uri: Annotated[
        str | None, typer.Argument(help="Model package directory or model URI.", show_default=False)
    ] = None,
    target: Annotated[Target, typer.Option(help="Where to deploy.")] = Target.docker,
    name: Annotated[
        str | None, typer.Option(help="Deployment name (default: the model's name).", show_default=False)
    ] = None,
    port: Annotated[int, typer.Option(help="Port the model answers on.", min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(help="Server processes per container or pod.", min=1)] = 1,
    image: Annotated[
        str | None,
        typer.Option(help="Image to run (default quayside/NAME:VERSION-OR-DIGEST, built when missing)."),
    ] = None,
    base_image: Annotated[str, typer.Option(help="Base image when a build is needed.")] = DEFAULT_BASE_IMAGE,
    down: Annotated[bool, typer.Option("--down", help="Remove the deployment --name.")] = False,
    grace_period: Annotated[
        float, typer.Option(help="Seconds a stopping server gets to finish in-flight requests.", min=0)
    ] = 30,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = "default",
    replicas: Annotated[int, typer.Option(help="Kubernetes replicas (without an HPA).", min=1)] = 2,
    cpu: Annotated[str, typer.Option(help="CPU request and limit per pod (Kubernetes quantity).")] = "1",
    memory: Annotated[str, typer.Option(help="Memory request and limit per pod.")] = "512Mi",
    min_replicas: Annotated[
        int | None, typer.Option(help="HPA minimum replicas (with --max-replicas).", min=1)
    ] = None,
    max_replicas: Annotated[
        int | None, typer.Option(help="HPA maximum replicas; adds an HPA.", min=1)
    ] = None,
    target_cpu: Annotated[
        int, typer.Option(help="HPA target CPU utilisation, percent.", min=1, max=100)
    ] = 70,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifests; apply nothing.")] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="'yaml': print the manifests instead of applying.")
    ] = None,
    canary: Annotated[
        int | None,
        typer.Option(
            help="Deploy this version beside the stable one with this percent of replicas.", min=1, max=99
        ),
    ] = None,
    promote_canary: Annotated[
        bool,
        typer.Option("--promote-canary", help="Make the canary the stable version and remove the canary."),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness or a rollout.", min=1)] = 300,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster).")
    ] = None,
) -> None:
    """Deploy a model: a Docker container on this host, or a Deployment on Kubernetes.

    Docker: builds the image when needed, starts the new container on --port beside
    the previous one of the same --name, waits until it serves, then stops the old
    one gracefully (no failed request during the switch). Kubernetes: renders a
    Deployment, Service, PodDisruptionBudget (and an HPA with --max-replicas) and
    applies them server-side, or prints them with --dry-run / -o yaml.
    """
    if target is Target.docker:
        _deploy_docker(
            model_uri,
            name=name,
            port=port,
            workers=workers,
            image=image,
            base_image=base_image,
            down=down,
            grace_period=grace_period,
        )
        return
    _deploy_kubernetes(
        model_uri,
        name=name,
        port=port,
        workers=workers,
        image=image,
        namespace=namespace,
        replicas=replicas,
        cpu=cpu,
        memory=memory,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu=target_cpu,
        print_only=dry_run or output is not None,
        output=output,
        canary=canary,
        promote_canary=promote_canary,
        grace_period=grace_period,
        timeout=timeout,
        kubeconfig=kubeconfig,
    )


def _k8s_name(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:56].strip("-") or "model"


def _deploy_kubernetes(
    model_uri: str | None,
    *,
    name: str | None,
    port: int,
    workers: int,
    image: str | None,
    namespace: str,
    replicas: int,
    cpu: str,
    memory: str,
    min_replicas: int | None,
    max_replicas: int | None,
    target_cpu: int,
    print_only: bool,
    output: str | None,
    canary: int | None,
    promote_canary: bool,
    grace_period: float,
    timeout: float,
    kubeconfig: str | None,
) -> None:
    from quayside.packager.k8s import apply as k8s
    from quayside.packager.k8s.render import DeploymentSpec, render_canary, render_manifests, to_yaml

    if output not in (None, "yaml"):
        raise UsageError(f"-o/--output takes 'yaml', not '{output}'")
    if promote_canary:
        if canary is not None:
            raise UsageError("--canary and --promote-canary do not go together")
        _promote_canary(
            model_uri,
            name=name,
            namespace=namespace,
            print_only=print_only,
            timeout=timeout,
            kubeconfig=kubeconfig,
            replicas=replicas,
            port=port,
            workers=workers,
            cpu=cpu,
            memory=memory,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            target_cpu=target_cpu,
            grace_period=grace_period,
        )
        return
    if model_uri is None:
        raise UsageError("give the MODEL_URI to deploy")
    source = ModelSource.resolve(model_uri)
    spec = DeploymentSpec(
        name=name or _k8s_name(source.manifest.name),
        image=image or source.default_tag(),
        model_name=source.registered_name or source.manifest.name,
        model_digest=source.manifest.digest(),
        model_version=source.version,
        namespace=namespace,
        port=port,
        workers=workers,
        replicas=replicas,
        cpu=cpu,
        memory=memory,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu=target_cpu,
        grace_period_s=int(grace_period),
    )
    if canary is None:
        manifests, stable_replicas = render_manifests(spec), None
    else:
        canary_deployment, stable_replicas = render_canary(spec, canary)
        manifests = [canary_deployment]
    if print_only:
        if stable_replicas is not None:
            out_raw(f"# the stable Deployment {spec.name} is scaled to {stable_replicas} replicas")
        out_raw(to_yaml(manifests))
        return
    if image is None:
        err.print(
            f"note: the cluster must be able to pull {spec.image}; push it to a registry or pass --image"
        )
    api = k8s.connect(kubeconfig)
    if stable_replicas is not None:
        if k8s.read_deployment(api, namespace, spec.name) is None:
            raise NotFoundError(
                f"no stable Deployment/{spec.name} in namespace {namespace} to put a canary beside; "
                "deploy without --canary first"
            )
        k8s.apply_manifests(api, manifests, log=err.print)
        if max_replicas is None:
            k8s.scale_deployment(api, namespace, spec.name, stable_replicas)
        k8s.wait_for_rollout(api, namespace, f"{spec.name}-canary", timeout_s=timeout, log=err.print)
        out.print(f"canary {spec.name}-canary serves about {canary}% of requests beside {spec.name}")
        return
    k8s.apply_manifests(api, manifests, log=err.print)
    k8s.wait_for_rollout(api, namespace, spec.name, timeout_s=timeout, log=err.print)
    out.print(f"deployment {spec.name} rolled out in namespace {namespace} (Service {spec.name})")


def _promote_canary(
    model_uri: str | None,
    *,
    name: str | None,
    namespace: str,
    print_only: bool,
    timeout: float,
    kubeconfig: str | None,
    **sizes: Any,
) -> None:
    """Roll the stable Deployment to the canary's image, then remove the canary."""
    from quayside.packager.k8s import apply as k8s
    from quayside.packager.k8s.render import (
        DeploymentSpec,
        check_deployment_name,
        promoted,
        render_manifests,
        to_yaml,
    )

    if name is None:
        if model_uri is None:
            raise UsageError("--promote-canary needs --name (or the MODEL_URI whose name the deployment has)")
        name = _k8s_name(ModelSource.resolve(model_uri).manifest.name)
    check_deployment_name(name)
    check_dns_label("namespace", namespace)
    api = k8s.connect(kubeconfig)
    canary = k8s.read_deployment(api, namespace, f"{name}-canary")
    if canary is None:
        raise NotFoundError(f"no canary Deployment/{name}-canary in namespace {namespace} to promote")
    grace = int(sizes.pop("grace_period"))
    base = DeploymentSpec(
        name=name,
        image="",
        model_name=canary["metadata"]["labels"].get("quayside.io/model", name),
        model_digest="",
        namespace=namespace,
        grace_period_s=grace,
        **sizes,
    )
    manifests = render_manifests(promoted(base, canary))
    if print_only:
        out_raw(to_yaml(manifests))
        return
    k8s.apply_manifests(api, manifests, log=err.print)
    k8s.wait_for_rollout(api, namespace, name, timeout_s=timeout, log=err.print)
    k8s.delete_deployment(api, namespace, f"{name}-canary")
    out.print(f"promoted: {name} now runs the canary's image; {name}-canary removed")


def deployments() -> None:
    """List the Docker deployments on this host (containers labelled by quayside deploy)."""
    from quayside.packager.docker.build import docker_client
    from quayside.packager.docker.containers import deployments as list_deployments

    rows = list_deployments(docker_client())
    if not rows:
        out.print("no Docker deployments")
        return
    out.print(
        f"{'NAME':<20} {'MODEL':<20} {'VERSION':<14} {'PORT':<6} {'STATUS':<22} {'CONTAINER':<32} IMAGE"
    )
    for row in rows:
        out.print(
            f"{row.name:<20} {row.model:<20} {row.version:<14} {row.port:<6} {row.status:<22} "
            f"{row.container:<32} {row.image}"
        )
