"""``quayside promote NAME VERSION --to production``: the promotion gate.

The version is served here (``quayside serve models:/NAME/VERSION``, or its built
image with ``--image``), load-tested, and its report stored in the artifact store
beside the registry's package copies (the layout is :mod:`quayside.registry.loadtests`'s).
Only when every objective passes does the version move; the audit entry's
evidence names the report. Otherwise the verdict is printed, the command exits 1
and stages and aliases stay as they were.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from quayside.cli.console import err, out, styled
from quayside.cli.loadtest import print_summary, print_verdict, run_and_report, served_image, served_locally
from quayside.cli.registry import ActorOption, ReasonOption, registry_client
from quayside.errors import UsageError


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
    from quayside.cli.loadtest import package_inputs, parse_duration
    from quayside.loadtesting.report import new_report_id
    from quayside.loadtesting.runner import LoadOptions
    from quayside.loadtesting.slo import DEFAULT_SLO_TAG, parse_slo
    from quayside.registry.loadtests import report_dir

    client = registry_client()
    registered = client.get_version(name, version)
    slo_text = slo or client.get_model(name).tags.get(DEFAULT_SLO_TAG)
    if not slo_text:
        raise UsageError(
            f"no SLO for '{name}': pass --slo or set one with: quayside registry slo set {name} '...'"
        )
    objectives = parse_slo(slo_text)
    options = LoadOptions(users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration))
    uri = registered.uri
    _, _, schema, example = package_inputs(uri)
    report_id = new_report_id()
    directory = report_dir(client.settings.artifact_dir, name, version, report_id)
    with contextlib.ExitStack() as stack:
        if image is not None:
            server = served_image(image, model_name=name, model_version=str(version))
        else:
            server = served_locally(uri, trust=trust, log_path=directory / "server.log")
        base_url = stack.enter_context(server)
        err.print(f"load-testing {uri} at {base_url} for {options.duration_s:g} s against: {slo_text}")
        report, verdict, json_path, _ = run_and_report(
            base_url=base_url,
            model_name=name,
            schema=schema,
            example=example,
            protocol=protocol,
            rows=rows,
            options=options,
            objectives=objectives,
            out_dir=directory,
            report_id=report_id,
        )
    print_summary(report)
    print_verdict(verdict)
    out.print(f"report {report_id}: {json_path}")
    if not verdict.passed:
        out.print(styled(("not promoted:", "red"), f" {uri} stays {registered.stage}"))
        raise typer.Exit(1)
    moved = client.transition(
        name,
        version,
        to,
        reason=reason or f"load test {report_id} met {slo_text}",
        actor=actor,
        evidence={"loadtest_report": report_id, "report_path": str(json_path), "slo": slo_text},
    )
    out.print(
        styled(f"promoted {moved.uri} to ", (moved.stage, "green"), f" (evidence: load test {report_id})")
    )
