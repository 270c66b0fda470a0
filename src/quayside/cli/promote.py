"""``quayside promote NAME VERSION --to production``: the promotion gate.

The workflow is :func:`quayside.compose.promotion.promote`: the version is served here
(or its built image with ``--image``), load-tested, its report stored beside the
registry's package copies, and moved only when every objective passes. This command
prints the figures and the verdict, and exits 1 when the version stays where it was.
"""

from __future__ import annotations

from typing import Annotated

import typer

from quayside.cli.console import err, out, styled
from quayside.cli.options import ActorOption, ReasonOption, registry_client
from quayside.cli.tables import print_summary, print_verdict
from quayside.compose.loadtest import parse_duration
from quayside.compose.promotion import promote as promote_version


def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    version: Annotated[int, typer.Argument(help="Version to promote.", show_default=False, min=1)],
    to: Annotated[
        str, typer.Option("--to", help="Stage to move it to when the load test passes.")
    ] = "production",
    slo: Annotated[
        str | None,
        typer.Option(help="Objectives (default: the model's, set with `quayside registry slo set`)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Load-test this built image (docker run --network host) instead.")
    ] = None,
    users: Annotated[int, typer.Option(help="Simulated users.", min=1)] = 32,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.", min=0.001)] = 8.0,
    duration: Annotated[str, typer.Option(help="How long to load: 30s, 2m.")] = "30s",
    rows: Annotated[int, typer.Option(help="Rows per request.", min=1)] = 1,
    protocol: Annotated[str, typer.Option(help="v2 or invocations.")] = "v2",
    trust: Annotated[bool, typer.Option("--trust", help="Allow a pickled native model.")] = False,
    actor: ActorOption = None,
    reason: ReasonOption = "",
) -> None:
    """Load-test a registered version and move it to --to only if every SLO objective passes."""
    from quayside.loadtesting.runner import LoadOptions

    client = registry_client()
    options = LoadOptions(users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration))
    result = promote_version(
        name,
        version,
        to=to,
        slo=slo,
        image=image,
        options=options,
        rows=rows,
        protocol=protocol,
        trust=trust,
        actor=actor,
        reason=reason,
        client=client,
        log=err.print,
        console=err,
    )
    print_summary(result.report)
    print_verdict(result.verdict)
    out.print(f"report {result.report_id}: {result.report_path}")
    if result.promoted is None:
        out.print(styled(("not promoted:", "red"), f" {result.version.uri} stays {result.version.stage}"))
        raise typer.Exit(1)
    moved = result.promoted
    out.print(
        styled(
            f"promoted {moved.uri} to ", (moved.stage, "green"), f" (evidence: load test {result.report_id})"
        )
    )
