"""``quayside experiments ...``: list, create, rename and delete experiments."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quayside.cli.console import format_time, out, print_json
from quayside.cli.options import tracking_client

app = typer.Typer(help="Manage experiments.", no_args_is_help=True)


@app.command("list")
def list_experiments(
    include_deleted: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
) -> None:
    """List experiments."""
    experiments = tracking_client().list_experiments(include_deleted)
    if as_json:
        print_json([e.to_dict() for e in experiments])
        return
    table = Table("id", "name", "created", "state")
    for experiment in experiments:
        table.add_row(
            str(experiment.id), experiment.name, format_time(experiment.created_at), experiment.lifecycle
        )
    out.print(table)


@app.command()
def create(name: Annotated[str, typer.Argument(help="Experiment name.")]) -> None:
    """Create an experiment."""
    experiment = tracking_client().create_experiment(name)
    out.print(f"created experiment '{experiment.name}' (id {experiment.id})")


@app.command()
def rename(
    name: Annotated[str, typer.Argument(help="Current name.")],
    new_name: Annotated[str, typer.Argument(help="New name.")],
) -> None:
    """Rename an experiment."""
    experiment = tracking_client().rename_experiment(name, new_name)
    out.print(f"renamed experiment {experiment.id} to '{experiment.name}'")


@app.command()
def delete(name: Annotated[str, typer.Argument(help="Experiment name.")]) -> None:
    """Delete an experiment: it and its runs leave listings and searches (their data stays)."""
    experiment = tracking_client().delete_experiment(name)
    out.print(f"deleted experiment '{experiment.name}'")
