"""``quayside run [PATH] -e ENTRY -P key=value``: run a project's entry point as a tracked run."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, styled
from quayside.config import load_settings
from quayside.tracking.client import Client
from quayside.tracking.entities import Run
from quayside.tracking.projects import load_project, parse_assignments, run_project


def run(
    path: Annotated[Path, typer.Argument(help="Project directory holding quayside.yaml.")] = Path("."),
    entry_point: Annotated[str, typer.Option("--entry-point", "-e", help="Entry point to run.")] = "main",
    param: Annotated[list[str] | None, typer.Option("--param", "-P", help="key=value (repeatable).")] = None,
    env: Annotated[
        str,
        typer.Option(
            "--env", help="local: this Python environment; venv: a fresh venv from the requirements."
        ),
    ] = "local",
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-x", help="Experiment (default: QUAYSIDE_EXPERIMENT).")
    ] = None,
    run_name: Annotated[str | None, typer.Option("--run-name", help="Name of the run.")] = None,
) -> None:
    """Run a project entry point with checked parameters, recording params, status and exit code."""
    if env not in ("local", "venv"):
        raise typer.BadParameter(f"must be local or venv, not '{env}'", param_hint="--env")
    settings = load_settings()
    project = load_project(path)
    client = Client(settings=settings)

    def started(tracked_run: Run, argv: list[str]) -> None:
        err.print(
            styled(
                (
                    f"run {tracked_run.id} ({project.name}:{entry_point}, --env {env}): {shlex.join(argv)}",
                    "dim",
                )
            )
        )

    result = run_project(
        client,
        project,
        entry_point,
        parse_assignments(param or []),
        env_mode=env,  # type: ignore[arg-type]
        experiment=experiment,
        run_name=run_name,
        base_env=dict(os.environ),
        envs_dir=settings.home / "envs",
        on_start=started,
    )
    if result.exit_code != 0:
        err.print(
            styled(
                ("error:", "red"),
                f" entry point '{entry_point}' exited with code {result.exit_code}; "
                f"run {result.run.id} is marked FAILED",
            )
        )
        raise typer.Exit(result.exit_code if 0 < result.exit_code < 256 else 1)
    err.print(f"run {result.run.id} FINISHED (exit code 0)")
