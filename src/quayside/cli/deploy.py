"""``quayside deploy`` and ``quayside deployments``: a model behind a port, on Docker or Kubernetes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from quayside.cli.console import err, out, out_raw
from quayside.cli.tables import print_build, print_checked_build
from quayside.compose import rollout
from quayside.compose.following import following_environment, is_moving
from quayside.compose.models import ModelSource
from quayside.config import load_settings
from quayside.errors import UsageError
from quayside.packager.docker.context import DEFAULT_BASE_IMAGE
from quayside.version import __version__

DEFAULT_SERVER_IMAGE = f"quayside/server:{__version__}"


class Target(StrEnum):
    docker = "docker"
    kubernetes = "kubernetes"


def _deploy_docker(
    model_uri: str | None,
    *,
    name: str | None,
    port: int,
    grpc_port: int | None,
    workers: int,
    image: str | None,
    base_image: str,
    down: bool,
    grace_period: float,
    auth_token_file: Path | None,
    environment: dict[str, str],
) -> None:
    if down:
        if not name:
            raise UsageError("--down needs --name: the deployment to remove")
        removed = rollout.remove_docker_deployment(name, grace_period_s=grace_period, log=err.print)
        out.print(f"removed deployment {name} ({removed} container{'s' if removed != 1 else ''})")
        return
    if model_uri is None:
        raise UsageError("give the MODEL_URI to deploy (or --down with --name)")
    done = rollout.deploy_docker(
        ModelSource.resolve(model_uri),
        name=name,
        port=port,
        grpc_port=grpc_port,
        workers=workers,
        image=image,
        base_image=base_image,
        grace_period_s=grace_period,
        auth_token_file=auth_token_file,
        environment=environment,
        log=err.print,
    )
    if done.build is not None:
        print_build(done.build.build, base_image)
        print_checked_build(done.build)
    deployment = done.deployment
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
    grpc_port: Annotated[
        int | None,
        typer.Option(
            help="Port of its gRPC (Open Inference Protocol) endpoint; 0 turns it off. Default: --port + 1 on "
            "Docker (containers share the host's network), 8081 on Kubernetes.",
            min=0,
            max=65535,
            show_default=False,
        ),
    ] = None,
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
    auth_token_file: Annotated[
        Path | None,
        typer.Option(
            help="Docker: mount this file read-only into the container; its server then requires the token "
            "in it ('Authorization: Bearer') on every route but health, readiness and /metrics.",
            show_default=False,
        ),
    ] = None,
    registry_uri: Annotated[
        str | None,
        typer.Option(
            help="The quayside server the deployment asks which version a moving MODEL_URI "
            "(models:/NAME@ALIAS, a stage, latest) names, to follow it: when the alias moves, the new "
            "version is loaded beside the old one and takes over. Default for Docker: this machine's "
            "QUAYSIDE_REGISTRY_URI (or QUAYSIDE_TRACKING_URI); for Kubernetes give its in-cluster address.",
            show_default=False,
        ),
    ] = None,
    follow_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between the deployment's questions to --registry-uri; 0: do not follow.", min=0
        ),
    ] = 10.0,
    registry_token_secret: Annotated[
        str | None,
        typer.Option(
            help="Kubernetes: the Secret NAME (key 'token') holding the API token the pods read the registry "
            "with, when it requires one.",
            show_default=False,
        ),
    ] = None,
    auth_token_secret: Annotated[
        str | None,
        typer.Option(
            help="Kubernetes: mount the Secret NAME (key 'token': kubectl create secret generic NAME "
            "--from-file=token=FILE) and require its token, as --auth-token-file does for Docker.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deploy a model: a Docker container on this host, or a Deployment on Kubernetes.

    Docker: builds the image when needed, starts the new container on --port beside
    the previous one of the same --name, waits until it serves, then stops the old
    one gracefully (no failed request during the switch). Kubernetes: renders a
    Deployment, Service, PodDisruptionBudget (and an HPA with --max-replicas) and
    applies them server-side, or prints them with --dry-run / -o yaml.

    The tracking and registry server itself: `quayside deploy server --help` (a model directory named 'server' is given as ./server).
    """
    if target is Target.docker:
        if auth_token_secret is not None:
            raise UsageError(
                "--auth-token-secret is for --target kubernetes; on Docker use --auth-token-file"
            )
        if registry_token_secret is not None:
            raise UsageError(
                "--registry-token-secret is for --target kubernetes; on Docker set QUAYSIDE_TOKEN"
            )
        _deploy_docker(
            model_uri,
            name=name,
            port=port,
            grpc_port=grpc_port,
            workers=workers,
            image=image,
            base_image=base_image,
            down=down,
            grace_period=grace_period,
            auth_token_file=auth_token_file,
            environment=_following(model_uri, registry_uri or _local_registry_uri(), follow_interval),
        )
        return
    if auth_token_file is not None:
        raise UsageError(
            "--auth-token-file is for --target docker; on Kubernetes put the token in a Secret and pass "
            "--auth-token-secret NAME"
        )
    _deploy_kubernetes(
        model_uri,
        name=name,
        image=image,
        print_only=dry_run or output is not None,
        output=output,
        canary=canary,
        promote_canary=promote_canary,
        timeout=timeout,
        kubeconfig=kubeconfig,
        namespace=namespace,
        port=port,
        **({} if grpc_port is None else {"grpc_port": grpc_port}),
        workers=workers,
        replicas=replicas,
        cpu=cpu,
        memory=memory,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu=target_cpu,
        grace_period_s=int(grace_period),
        auth_token_secret=auth_token_secret,
        environment=tuple(_following(model_uri, registry_uri, follow_interval).items()),
        registry_token_secret=registry_token_secret,
    )


def _local_registry_uri() -> str | None:
    """The registry this machine's commands use, when it is a server (a Docker deployment shares the host network)."""
    settings = load_settings()
    return settings.registry_uri or settings.tracking_uri


def _following(model_uri: str | None, registry_uri: str | None, interval_s: float) -> dict[str, str]:
    """The environment that makes a deployment follow ``model_uri``; a note when it will not."""
    if model_uri is None or not is_moving(model_uri) or not interval_s:
        return {}
    if registry_uri is None:
        err.print(
            f"note: the deployment serves the version {model_uri} names now; give --registry-uri (the quayside "
            "server it can reach) for it to follow when that moves"
        )
        return {}
    return following_environment(model_uri, registry_uri, interval_s)


def _deploy_kubernetes(
    model_uri: str | None,
    *,
    name: str | None,
    image: str | None,
    print_only: bool,
    output: str | None,
    canary: int | None,
    promote_canary: bool,
    timeout: float,
    kubeconfig: str | None,
    **sizes: Any,
) -> None:
    from quayside.packager.k8s.render import to_yaml

    if output not in (None, "yaml"):
        raise UsageError(f"-o/--output takes 'yaml', not '{output}'")
    if promote_canary:
        if canary is not None:
            raise UsageError("--canary and --promote-canary do not go together")
        _promote_canary(
            model_uri, name=name, print_only=print_only, timeout=timeout, kubeconfig=kubeconfig, **sizes
        )
        return
    if model_uri is None:
        raise UsageError("give the MODEL_URI to deploy")
    spec = rollout.deployment_spec(ModelSource.resolve(model_uri), name=name, image=image, **sizes)
    plan = rollout.plan_deployment(spec, canary=canary)
    if print_only:
        if plan.stable_replicas is not None:
            out_raw(f"# the stable Deployment {spec.name} is scaled to {plan.stable_replicas} replicas")
        out_raw(to_yaml(plan.manifests))
        return
    if image is None:
        err.print(
            f"note: the cluster must be able to pull {spec.image}; push it to a registry or pass --image"
        )
    rollout.apply_deployment(plan, kubeconfig=kubeconfig, timeout_s=timeout, log=err.print)
    if canary is not None:
        out.print(f"canary {spec.name}-canary serves about {canary}% of requests beside {spec.name}")
        return
    out.print(f"deployment {spec.name} rolled out in namespace {spec.namespace} (Service {spec.name})")


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
    from quayside.packager.k8s.render import to_yaml

    if name is None:
        if model_uri is None:
            raise UsageError("--promote-canary needs --name (or the MODEL_URI whose name the deployment has)")
        name = rollout.kubernetes_name(ModelSource.resolve(model_uri).manifest.name)
    plan = rollout.promote_canary(
        name,
        namespace=namespace,
        sizes=sizes,
        kubeconfig=kubeconfig,
        timeout_s=timeout,
        apply=not print_only,
        log=err.print,
    )
    if print_only:
        out_raw(to_yaml(plan.manifests))
        return
    out.print(f"promoted: {name} now runs the canary's image; {name}-canary removed")


def deployments() -> None:
    """List the Docker deployments on this host (containers labelled by quayside deploy)."""
    rows = rollout.docker_deployments()
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


# --- quayside deploy server ----------------------------------------------------------------------


def deploy_server(
    target: Annotated[
        Target, typer.Option(help="Where to deploy; the server goes on Kubernetes only.")
    ] = Target.kubernetes,
    artifact_root: Annotated[
        str | None,
        typer.Option(
            help="s3://BUCKET or s3://BUCKET/PREFIX: where every replica keeps artifacts (default: QUAYSIDE_ARTIFACT_ROOT).",
            show_default=False,
        ),
    ] = None,
    db_secret: Annotated[
        str,
        typer.Option(
            help="Secret holding the PostgreSQL URL under the key 'url' (kubectl create secret generic NAME "
            "--from-literal=url=postgresql+psycopg://USER:PASSWORD@HOST/DB), read as QUAYSIDE_DB_URL."
        ),
    ] = "quayside-db",
    session_secret: Annotated[
        str,
        typer.Option(
            help="Secret holding the web UI's session key under the key 'secret' (--from-literal="
            "secret=$(openssl rand -base64 48)), read as QUAYSIDE_SESSION_SECRET: one for all replicas."
        ),
    ] = "quayside-session",
    s3_secret: Annotated[
        str | None,
        typer.Option(
            help="Secret holding the object store's credentials under the keys 'access-key-id' and "
            "'secret-access-key', read as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Leave it out when "
            "the pods get credentials otherwise (IRSA, workload identity).",
            show_default=False,
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(help="S3 API endpoint other than AWS's (MinIO, Ceph, R2).", show_default=False),
    ] = None,
    s3_region: Annotated[
        str | None, typer.Option(help="The bucket's region (AWS_DEFAULT_REGION).", show_default=False)
    ] = None,
    name: Annotated[str, typer.Option(help="Deployment and Service name.")] = "quayside-server",
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = "default",
    image: Annotated[
        str,
        typer.Option(
            help="Image to run: quayside\\[postgres,s3] installed, `quayside` on its PATH, runnable as UID 10001."
        ),
    ] = DEFAULT_SERVER_IMAGE,
    # No min=: the spec refuses a count below 1 in one line, as `quayside server --workers` does.
    replicas: Annotated[
        int, typer.Option(help="Server pods (stateless: any replica answers any request).")
    ] = 2,
    workers: Annotated[int, typer.Option(help="Server processes per pod (quayside server --workers).")] = 1,
    cpu: Annotated[str, typer.Option(help="CPU request and limit per pod (Kubernetes quantity).")] = "1",
    memory: Annotated[str, typer.Option(help="Memory request and limit per pod.")] = "1Gi",
    scratch_size: Annotated[
        str,
        typer.Option(help="Size limit of each pod's scratch space (uploads in progress are spooled there)."),
    ] = "4Gi",
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--insecure-no-auth",
            help="Require credentials (create the first admin first: QUAYSIDE_DB_URL=... quayside admin "
            "create-user NAME --admin), or let anyone who reaches the Service read and change everything.",
        ),
    ] = True,
    grace_period: Annotated[
        int, typer.Option(help="Seconds a stopping server gets to finish in-flight requests.", min=0)
    ] = 30,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifests; apply nothing.")] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="'yaml': print the manifests instead of applying.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the rollout.", min=1)] = 300,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster).")
    ] = None,
) -> None:
    """Deploy the tracking and registry server on Kubernetes: stateless replicas on PostgreSQL and S3.

    Renders a Deployment of `quayside server` pods, a Service and a PodDisruptionBudget and applies them server-side (or prints them with --dry-run / -o yaml).

    The database URL, the session key and the S3 credentials come from existing Secrets, referenced by name: no secret value is ever written into a manifest. A pod is ready while its database and bucket answer (/health/ready) and alive while its process does (/health).
    """
    from quayside.packager.k8s.render import to_yaml
    from quayside.packager.k8s.server import ServerSpec, render_server_manifests

    if target is not Target.kubernetes:
        raise UsageError(
            "quayside deploy server goes on --target kubernetes; on one machine run `quayside server --workers N`"
        )
    if output not in (None, "yaml"):
        raise UsageError(f"-o/--output takes 'yaml', not '{output}'")
    root = artifact_root or load_settings().artifact_root
    if root is None:
        raise UsageError("give --artifact-root s3://BUCKET[/PREFIX]: the bucket every replica shares")
    spec = ServerSpec(
        image=image,
        artifact_root=root,
        name=name,
        namespace=namespace,
        replicas=replicas,
        workers=workers,
        cpu=cpu,
        memory=memory,
        scratch_size=scratch_size,
        grace_period_s=grace_period,
        db_secret=db_secret,
        session_secret=session_secret,
        s3_secret=s3_secret,
        s3_endpoint_url=s3_endpoint,
        s3_region=s3_region,
        auth=auth,
    )
    manifests = render_server_manifests(spec)
    if dry_run or output is not None:
        out_raw(to_yaml(manifests))
        return
    if image == DEFAULT_SERVER_IMAGE:
        err.print(f"note: the cluster must be able to pull {image}; push it to a registry or pass --image")
    _apply_server(manifests, spec.namespace, spec.name, kubeconfig=kubeconfig, timeout=timeout)
    out.print(f"server {spec.name} rolled out in namespace {spec.namespace} (Service {spec.name})")


def _apply_server(
    manifests: list[dict[str, Any]], namespace: str, name: str, *, kubeconfig: str | None, timeout: float
) -> None:
    from quayside.packager.k8s import apply as k8s

    api = k8s.connect(kubeconfig)
    k8s.apply_manifests(api, manifests, log=err.print)
    k8s.wait_for_rollout(api, namespace, name, timeout_s=timeout, log=err.print)


class DeployGroup(TyperGroup):
    """``quayside deploy``: a subcommand (``server``) when the first argument names one, else the
    model command, given every argument as before (``quayside deploy MODEL_URI ...``)."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if args and args[0] in self.commands:
            return super().make_context(info_name, args, parent=parent, **extra)
        # The context is the model command's own, under the name 'deploy': usage and help read as before.
        return typer.main.get_command(_model_app).make_context(info_name, args, parent=parent, **extra)


_model_app = typer.Typer(rich_markup_mode="rich")
_model_app.command("deploy")(deploy)

app = typer.Typer(
    cls=DeployGroup,
    rich_markup_mode="rich",
    help="Deploy a model (quayside deploy MODEL_URI ...) or the server itself (quayside deploy server ...).",
)
app.command("server")(deploy_server)
