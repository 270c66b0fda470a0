"""``quayside loadtest TARGET``: load a running server or a model served here, report, judge against SLOs.

TARGET is a server URL (``http://HOST:PORT/v2/models/NAME``, or the base URL with
``--model-name``/``--model``) or a model package/URI, which is then served on a
free local port for the test and stopped afterwards. Payload rows come from the
model's signature and input example: from ``--model`` (or the MODEL_URI itself)
when given, else from the server's V2 metadata with placeholder ranges.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from quayside.cli.console import err, out, styled
from quayside.cli.tables import print_summary, print_verdict
from quayside.compose.loadtest import package_inputs, parse_duration, run_and_report, served_locally
from quayside.errors import UsageError

DEFAULT_REPORTS_DIR = Path("loadtest-reports")


def loadtest(
    target: Annotated[
        str,
        typer.Argument(
            help="Server URL (http://HOST:PORT/v2/models/NAME) or a model package/URI to serve here.",
            show_default=False,
        ),
    ],
    users: Annotated[int, typer.Option(help="Simulated users, each sending back to back.", min=1)] = 32,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.", min=0.001)] = 8.0,
    duration: Annotated[str, typer.Option(help="How long to load: 30s, 2m, 500ms.")] = "30s",
    rows: Annotated[int, typer.Option(help="Rows per request.", min=1)] = 1,
    protocol: Annotated[str, typer.Option(help="v2 or invocations.")] = "v2",
    slo: Annotated[
        str | None,
        typer.Option(help="Objectives, e.g. 'p95_ms<=25,p99_ms<=60,error_rate<=0.001,rps>=300'."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default: loadtest-reports/REPORT_ID).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="With a URL TARGET: the package/URI whose example bounds the payload rows."),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="With a base-URL TARGET: the served model's name.")
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Serving a MODEL_URI here: allow a pickled native model.")
    ] = False,
) -> None:
    """Load-test a model server with requests generated from the model's signature; judge SLOs.

    Writes report.json and a self-contained report.html (latency and throughput
    over time). Exits 1 when any --slo objective is not met, 0 otherwise.
    """
    from quayside.loadtesting.payloads import PROTOCOLS
    from quayside.loadtesting.report import new_report_id
    from quayside.loadtesting.runner import LoadOptions
    from quayside.slo import parse_slo

    objectives = parse_slo(slo) if slo is not None else ()
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, not '{protocol}'")
    options = LoadOptions(users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration))
    report_id = new_report_id()
    directory = out_dir or DEFAULT_REPORTS_DIR / report_id
    with contextlib.ExitStack() as stack:
        if target.startswith(("http://", "https://")):
            base_url, name, schema, example = _remote(target, model, model_name)
        else:
            _, name, schema, example = package_inputs(target)
            base_url = stack.enter_context(
                served_locally(target, trust=trust, log_path=directory / "server.log", log=err.print)
            )
        err.print(
            styled(
                "load-testing ", (name, "bold"), f" at {base_url} ({protocol}) for {options.duration_s:g} s"
            )
        )
        run = run_and_report(
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
            console=err,
        )
    print_summary(run.report)
    out.print(f"report {report_id}: {run.json_path} and {run.html_path}")
    if run.verdict is not None:
        print_verdict(run.verdict)
        if not run.verdict.passed:
            raise typer.Exit(1)


def _remote(url: str, model: str | None, model_name: str | None) -> tuple[str, str, Any, Any]:
    from quayside.loadtesting.target import fetch_schema, split_url

    base_url, name = split_url(url)
    name = name or model_name
    if model is not None:
        _, package_name, schema, example = package_inputs(model)
        return base_url, name or package_name, schema, example
    if name is None:
        raise UsageError(
            "name the model: http://HOST:PORT/v2/models/NAME, --model-name NAME or --model PACKAGE"
        )
    return base_url, name, fetch_schema(base_url, name), None
