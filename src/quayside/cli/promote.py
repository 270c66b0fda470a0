"""``quayside promote NAME VERSION [--to production] [--alias champion]``: the promotion workflow.

The workflow is :func:`quayside.compose.promotion.promote`: the version is served here
(or its built image with ``--image``), load-tested against the model's promotion policy,
its report stored with the version in the registry (local or a server), which judges it;
the version moves only when that verdict passes, and the registry checks its policy again
in the move itself. This command prints the figures and the registry's verdict, and exits
1 when the version stays where it was.
"""

from __future__ import annotations

from typing import Annotated

import typer

from quayside.cli.console import err, out, styled
from quayside.cli.options import ActorOption, ReasonOption, registry_client
from quayside.cli.tables import print_judgement, print_summary
from quayside.compose.loadtest import parse_duration
from quayside.compose.promotion import promote as promote_version


def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    version: Annotated[int, typer.Argument(help="Version to promote.", show_default=False, min=1)],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Stage to move it to when the load test passes (default: production, unless only --alias is given).",
            show_default=False,
        ),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option("--alias", help="Point this alias (e.g. champion) at it when the test passes."),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="Load-test this built image (docker run --network host) instead, by its repository "
            "digest when it was pushed."
        ),
    ] = None,
    built: Annotated[
        bool,
        typer.Option(
            "--built",
            help="Load-test the version's newest pushed build that passed its checks, by its digest: the "
            "image quayside deploy runs.",
        ),
    ] = False,
    users: Annotated[int, typer.Option(help="Simulated users.", min=1)] = 32,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.", min=0.001)] = 8.0,
    duration: Annotated[str, typer.Option(help="How long to load: 30s, 2m.")] = "30s",
    rows: Annotated[int, typer.Option(help="Rows per request.", min=1)] = 1,
    protocol: Annotated[
        str, typer.Option(help="v2, invocations or grpc (ModelInfer on the server's gRPC port).")
    ] = "v2",
    trust: Annotated[bool, typer.Option("--trust", help="Allow a pickled native model.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Load-generating processes: 1 runs the users here; N runs Locust's master here and N "
            "local worker processes (Locust's distributed mode).",
            min=1,
        ),
    ] = 1,
    actor: ActorOption = None,
    reason: ReasonOption = "",
) -> None:
    """Load-test a registered version against its model's SLO; store the report; move it only if it passes.

    The SLO, the minimum load shape and the protected stages and aliases are the model's
    promotion policy (quayside registry policy show NAME).
    """
    from quayside.loadtesting.report import generator_line, saturation_note
    from quayside.loadtesting.runner import LoadOptions

    client = registry_client()
    options = LoadOptions(
        users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration), workers=workers
    )
    result = promote_version(
        name,
        version,
        to=to if to is not None or alias is not None else "production",
        alias=alias,
        image=image,
        built=built,
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
    print_summary(result.document)
    line = generator_line(result.document)
    if line is not None:
        out.print(line)
    print_judgement(result.report)
    note = saturation_note(result.document.get("generator"))
    if note is not None:
        out.print(styled(("caveat: ", "yellow"), note))
    out.print(
        f"report {result.report.id} stored with {result.version.uri} (quayside registry reports {name} {version})"
    )
    if result.promoted is None:
        out.print(styled(("not promoted:", "red"), f" {result.version.uri} stays {result.version.stage}"))
        raise typer.Exit(1)
    moved = result.promoted
    where = [moved.stage] if to is not None or alias is None else []
    where += [f"@{alias}"] if alias is not None else []
    out.print(
        styled(
            f"promoted {moved.uri} to ",
            (" and ".join(where), "green"),
            f" (evidence: load test {result.report.id})",
        )
    )
