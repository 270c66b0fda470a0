"""The promotion workflow: load-test a registered version, hand the report to the registry, ask for the move.

The version is served here (``quayside serve models:/NAME/VERSION``), or its built
image with ``image=``, and load-tested with the model's promotion policy in view (its
SLO, its minimum load shape). The report goes to the registry — the local store or a
``quayside server``, the same way — which keeps it, judges its figures itself and
answers with the verdict. Only then is the move asked for, and the registry allows it
or not by its own rule (:mod:`quayside.registry.policy`): this function decides
nothing the registry would not decide again.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose import Log, no_log
from quayside.compose.loadtest import (
    grpc_port_for,
    image_identity,
    local_grpc_target,
    package_inputs,
    register_report,
    run_and_report,
    served_image,
    served_locally,
)
from quayside.errors import UnavailableError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from quayside.compose.clients import RegistryClient
    from quayside.loadtesting.runner import LoadOptions
    from quayside.registry.entities import ModelVersion
    from quayside.registry.loadtests import LoadTestReport
    from quayside.registry.policy import PromotionPolicy


@dataclass(frozen=True)
class PromotionResult:
    """What was measured, how the registry judged it, and what moved.

    ``version`` is the version as it was before; ``promoted`` is it after the moves, or
    None when the registry's verdict failed and nothing moved.
    """

    version: ModelVersion
    policy: PromotionPolicy
    report: LoadTestReport
    """The registry's record of the uploaded report, judged by the registry."""
    document: dict[str, Any]
    """The report as the load generator wrote it (figures per interval included)."""
    promoted: ModelVersion | None

    @property
    def passed(self) -> bool:
        """Whether the registry found every objective met."""
        return bool(self.report.passed)


def check_shape(policy: PromotionPolicy, options: LoadOptions, *, name: str, image: str | None) -> None:
    """Refuse, before any load, a test whose report the policy could never accept."""
    if policy.slo is None:
        raise UsageError(
            f"model '{name}' has no SLO in its promotion policy; set one with: "
            f"quayside registry policy set {name} --slo 'p95_ms<=25,error_rate<=0.001'"
        )
    if options.users < policy.min_users:
        raise UsageError(
            f"the promotion policy of '{name}' needs at least {policy.min_users} users; "
            f"--users {options.users} would not qualify"
        )
    if options.duration_s < policy.min_duration_s:
        raise UsageError(
            f"the promotion policy of '{name}' needs a load test of at least {policy.min_duration_s:g} s; "
            f"--duration {options.duration_s:g}s would not qualify"
        )
    if policy.require_image and image is None:
        raise UsageError(
            f"the promotion policy of '{name}' requires a load test of the built image: "
            "pass --built (the version's pushed build) or --image (build it with quayside build)"
        )


def promote(
    name: str,
    version: int,
    *,
    to: str | None = "production",
    alias: str | None = None,
    image: str | None = None,
    built: bool = False,
    options: LoadOptions | None = None,
    rows: int = 1,
    protocol: str = "v2",
    trust: bool = False,
    actor: str | None = None,
    reason: str = "",
    client: RegistryClient | None = None,
    log: Log = no_log,
    console: Console | None = None,
) -> PromotionResult:
    """Load-test version ``version`` of ``name``, store the report with it, and move it if the registry agrees.

    Moves it to stage ``to`` (None: no stage change) and points ``alias`` at it, each only
    when the registry's verdict on the report passes; a protected stage or alias is then
    checked once more by the registry itself, in the move's own transaction. ``image``
    load-tests that built image (``docker run --network host``) instead of serving the
    package here, by its repository digest when it has one; ``built`` load-tests the
    version's newest pushed build that passes its checks, by its digest, as
    ``quayside deploy`` runs it. ``protocol`` is ``v2``, ``invocations`` or ``grpc`` (the
    server then listens for gRPC on a free port, and the users call ``ModelInfer`` there). ``options`` sets users, spawn rate and duration (default
    :class:`~quayside.loadtesting.runner.LoadOptions`). Progress lines go to ``log``;
    ``console`` shows the live load panel (default: stderr).
    """
    from quayside.compose.clients import RegistryClient
    from quayside.loadtesting.payloads import PROTOCOLS
    from quayside.loadtesting.report import new_report_id
    from quayside.loadtesting.runner import LoadOptions

    if to is None and alias is None:
        raise UsageError("nothing to promote to: give a stage (--to) or an alias (--alias)")
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, not '{protocol}'")
    client = client or RegistryClient()
    options = options or LoadOptions()
    registered = client.get_version(name, version)
    policy = client.get_policy(name)
    if built:
        if image is not None:
            raise UsageError("--built and --image do not go together: --built picks the image itself")
        image = _pushed_image(client, name, version, registered.digest, log)
    check_shape(policy, options, name=name, image=image)
    inputs = package_inputs(registered.uri, settings=client.settings)
    if image is not None:
        tested = image_identity(image)
        if tested["package_digest"] != registered.digest:
            raise UsageError(
                f"image '{image}' was built from package {tested['package_digest'][:12]}, not from "
                f"version {version} of '{name}' ({registered.digest[:12]}): build it with quayside build {registered.uri}"
            )
        # What runs under load is the digest, not whatever the tag names by the time it starts.
        image = tested.get("repo_digest", image)
    else:
        tested = inputs.tested()
    with contextlib.ExitStack() as stack:
        # The report lives with the registry; here it is only written to be uploaded.
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quayside-promote-")))
        grpc_port = grpc_port_for(protocol)
        if image is not None:
            server = served_image(image, model_name=name, model_version=str(version), grpc_port=grpc_port)
        else:
            server = served_locally(
                registered.uri,
                trust=trust,
                log_path=workdir / "server.log",
                settings=client.settings,
                grpc_port=grpc_port,
                log=log,
            )
        base_url = stack.enter_context(server)
        grpc_target = local_grpc_target(grpc_port)
        log(
            f"load-testing {registered.uri} at {grpc_target or base_url} ({protocol}) "
            f"for {options.duration_s:g} s against: {policy.slo}"
        )
        run = run_and_report(
            base_url=base_url,
            model_name=name,
            schema=inputs.schema,
            example=inputs.example,
            protocol=protocol,
            rows=rows,
            options=options,
            objectives=policy.objectives,
            out_dir=workdir / "report",
            report_id=new_report_id(),
            tested=tested,
            grpc_target=grpc_target,
            console=console,
        )
        stored = register_report(client, name, version, run)
    promoted = None
    if stored.passed:
        why = reason or f"load test {stored.id} met {policy.slo}"
        if to is not None:
            promoted = client.transition(name, version, to, reason=why, actor=actor)
        if alias is not None:
            promoted = client.set_alias(name, alias, version, reason=why, actor=actor)
    return PromotionResult(
        version=registered,
        policy=policy,
        report=stored,
        document=run.report,
        promoted=promoted,
    )


def _pushed_image(client: RegistryClient, name: str, version: int, digest: str, log: Log) -> str:
    """The repository digest of the version's newest pushed, passing build, present on the engine.

    The docker command line, not the docker SDK: the SDK imports urllib3's ssl before Locust's
    gevent patches it in this same process, which breaks the load test that follows.
    """
    import subprocess

    from quayside.compose.images import pushed_build

    record = pushed_build(client, name, version, digest)
    if record is None or record.repo_digest is None:
        raise UsageError(
            f"version {version} of '{name}' has no pushed build that passes its checks: build it with "
            f"quayside build models:/{name}/{version} --tag REGISTRY/NAME:TAG --push"
        )
    reference = record.repo_digest
    log(f"load-testing build {record.id}: {reference}")
    try:
        present = subprocess.run(["docker", "image", "inspect", reference], capture_output=True, check=False)
        if present.returncode != 0:
            log(f"pulling {reference}")
            pulled = subprocess.run(
                ["docker", "pull", "-q", reference], capture_output=True, text=True, check=False
            )
            if pulled.returncode != 0:
                raise UnavailableError(f"could not pull {reference}: {pulled.stderr.strip()}")
    except FileNotFoundError:
        raise UsageError("--built needs the docker command line, and it is not installed") from None
    return reference
