"""``quayside runs ...``: search, show and compare runs."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from quayside.cli.console import format_time, human_size, out, print_json, styled
from quayside.cli.options import tracking_client
from quayside.db.sql import Lifecycle
from quayside.tracking.entities import Run

app = typer.Typer(help="Search, show and compare runs.", no_args_is_help=True)

MAX_COLUMNS = 6
STATUS_STYLE = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow", "RUNNING": "cyan"}


def format_value(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return str(value) if math.isnan(value) or math.isinf(value) else f"{value:.6g}"
    return value


def _status(run: Run, note: str = "") -> Text:
    return styled((run.status.value, STATUS_STYLE.get(run.status.value, "")), note)


def _user_tags(run: Run) -> dict[str, str]:
    return {k: v for k, v in run.tags.items() if not k.startswith("quayside.")}


@app.command()
def search(
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-x", help="Experiment name (repeatable; default: all)."),
    ] = None,
    filter_string: Annotated[
        str, typer.Option("--filter", "-f", help="e.g. \"metrics.accuracy > 0.9 and params.model = 'rf'\".")
    ] = "",
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", "-o", help='e.g. "metrics.accuracy desc" (repeatable).')
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max", min=1, max=10_000, help="At most this many runs.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
) -> None:
    """Find runs by their metrics, params, tags and attributes."""
    runs = tracking_client().search_runs(experiment or None, filter_string, order_by or None, max_results)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        out.print("no runs match")
        return
    metric_keys = sorted({k for r in runs for k in r.metrics})[:MAX_COLUMNS]
    param_keys = sorted({k for r in runs for k in r.params})[:MAX_COLUMNS]
    table = Table(title=f"{len(runs)} run{'s' if len(runs) != 1 else ''}", title_justify="left")
    for column in ("run id", "name", "status", "started"):
        table.add_column(column, no_wrap=column == "run id")
    for key in metric_keys:
        table.add_column(f"metrics.{key}", justify="right")
    for key in param_keys:
        table.add_column(f"params.{key}")
    for run in runs:
        metrics = [format_value(run.metrics[k].value) if k in run.metrics else "-" for k in metric_keys]
        params = [run.params.get(k, "-") for k in param_keys]
        table.add_row(run.id, run.name, _status(run), format_time(run.start_time), *metrics, *params)
    out.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
) -> None:
    """Show a run: status, params, latest metrics, tags, models and artifacts."""
    client = tracking_client()
    run = client.get_run(run_id)
    artifacts = client.list_artifacts(run_id)
    if as_json:
        body = run.to_dict() | {"artifacts": [a.to_dict() for a in artifacts]}
        print_json(body)
        return
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    experiment = client.get_experiment(run.experiment_id)
    exit_code = "-" if run.exit_code is None else str(run.exit_code)
    for label, value in (
        ("run", f"{run.name} ({run.id})"),
        ("experiment", experiment.name),
        ("status", _status(run, "" if run.lifecycle == Lifecycle.ACTIVE else " (deleted)")),
        ("started", format_time(run.start_time)),
        ("ended", format_time(run.end_time)),
        ("exit code", exit_code),
        ("parent", run.parent_run_id or "-"),
        ("git commit", run.tags.get("quayside.git.commit", "-")),
        ("command", run.tags.get("quayside.command", "-")),
    ):
        summary.add_row(label, value)
    out.print(summary)
    for title, values in (("Params", run.params), ("Tags", _user_tags(run))):
        if values:
            table = Table("key", "value", title=title, title_justify="left")
            for key, value in values.items():
                table.add_row(key, value)
            out.print(table)
    if run.metrics:
        table = Table("key", "latest", "step", title="Metrics", title_justify="left")
        for key, point in run.metrics.items():
            table.add_row(key, format_value(point.value), str(point.step))
        out.print(table)
    for model in run.models:
        out.print(
            styled(
                "model ", (model.path, "bold"), f" ({model.flavor}) sha256:{model.digest[:20]}…  {model.uri}"
            )
        )
    if artifacts:
        table = Table("artifact", "size", title="Artifacts", title_justify="left")
        for artifact in artifacts:
            size = "dir" if artifact.is_dir else human_size(artifact.size or 0)
            table.add_row(artifact.path + ("/" if artifact.is_dir else ""), size)
        out.print(table)


@app.command()
def compare(run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")]) -> None:
    """Params and latest metrics side by side; rows where the runs differ are highlighted."""
    client = tracking_client()
    runs = [client.get_run(run_id) for run_id in run_ids]
    table = Table(title=f"comparing {len(runs)} runs", title_justify="left")
    table.add_column("", style="dim")
    for run in runs:
        table.add_column(f"{run.name}\n{run.id[:12]}")
    table.add_row("status", *[_status(r) for r in runs])
    sections: list[tuple[str, list[str], list[list[str]]]] = []
    param_keys = sorted({k for r in runs for k in r.params})
    sections.append(("params", param_keys, [[r.params.get(k, "-") for r in runs] for k in param_keys]))
    metric_keys = sorted({k for r in runs for k in r.metrics})
    sections.append(
        (
            "metrics",
            metric_keys,
            [
                [format_value(r.metrics[k].value) if k in r.metrics else "-" for r in runs]
                for k in metric_keys
            ],
        )
    )
    differing = 0
    for section, keys, rows in sections:
        for key, values in zip(keys, rows, strict=True):
            if len(set(values)) > 1:
                differing += 1
                table.add_row(*[styled((cell, "bold yellow")) for cell in (f"{section}.{key}", *values)])
            else:
                table.add_row(f"{section}.{key}", *values)
    out.print(table)
    out.print(f"{differing} of {len(param_keys) + len(metric_keys)} params and metrics differ (highlighted)")
