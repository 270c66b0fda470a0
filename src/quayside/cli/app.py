"""The root ``quayside`` command, and the one place CLI errors become exit codes.

Usage errors exit 2 (Click's convention); failures exit 1 with one
``error: ...`` line; tracebacks only with ``--debug`` (or ``QUAYSIDE_DEBUG=1``).
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Annotated

import typer

from quayside import __version__
from quayside.cli import admin as admin_commands
from quayside.cli import build as build_command
from quayside.cli import convert as convert_command
from quayside.cli import deploy as deploy_commands
from quayside.cli import experiments as experiment_commands
from quayside.cli import export as export_commands
from quayside.cli import gc as gc_command
from quayside.cli import importers as import_commands
from quayside.cli import loadtest as loadtest_command
from quayside.cli import login as login_commands
from quayside.cli import model as model_commands
from quayside.cli import project as project_command
from quayside.cli import promote as promote_command
from quayside.cli import registry as registry_commands
from quayside.cli import runs as run_commands
from quayside.cli import serve as serve_command
from quayside.cli import server as server_command
from quayside.cli.console import err, out, styled
from quayside.config import load_settings
from quayside.errors import QuaysideError

app = typer.Typer(
    name="quayside",
    help="Get a trained model into production: package, convert to ONNX, register, serve, deploy, load-test.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(model_commands.app, name="model")
app.command("convert")(convert_command.convert)
app.add_typer(import_commands.app, name="import")
app.add_typer(export_commands.app, name="export")
app.add_typer(experiment_commands.app, name="experiments")
app.add_typer(run_commands.app, name="runs")
app.command("run")(project_command.run)
app.add_typer(registry_commands.app, name="registry")
app.command("server")(server_command.server)
app.command("ui")(server_command.server)
app.command("serve")(serve_command.serve)
app.command("build")(build_command.build)
app.add_typer(deploy_commands.app, name="deploy")  # MODEL_URI ..., or the subcommand server
app.command("deployments")(deploy_commands.deployments)
app.command("loadtest")(loadtest_command.loadtest)
app.command("promote")(promote_command.promote)
app.command("gc")(gc_command.gc)
app.add_typer(admin_commands.admin_app, name="admin")
app.add_typer(admin_commands.users_app, name="users")
app.add_typer(admin_commands.groups_app, name="groups")
app.add_typer(admin_commands.grants_app, name="grants")
app.add_typer(admin_commands.tokens_app, name="tokens")
app.command("login")(login_commands.login)
app.command("logout")(login_commands.logout)

_state = {"debug": False}

KEY_PACKAGES = ("numpy", "onnx", "onnxruntime", "scikit-learn", "skl2onnx", "xgboost", "lightgbm", "torch")


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """Quayside: model-serving-first ML deployment."""
    _state["debug"] = debug or load_settings().debug


@app.command()
def version() -> None:
    """Print the Quayside version, the Python running it, and the installed ML runtimes."""
    out.print(f"quayside {__version__}")
    out.print(f"python {platform.python_version()} ({sys.executable})")
    for name in KEY_PACKAGES:
        try:
            out.print(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.print(styled(f"{name} ", ("not installed", "dim")))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``quayside`` console script."""
    try:
        # Standalone mode: Typer prints usage errors itself and exits 2.
        app(args=argv)
    except QuaysideError as e:
        if _state["debug"]:
            raise
        err.print(styled(("error:", "red"), f" {e}"))
        sys.exit(1)
    except Exception as e:
        if _state["debug"]:
            raise
        err.print(
            styled(
                ("error:", "red"),
                f" unexpected {type(e).__name__}: {e} "
                "(this is a bug in Quayside; run with --debug for the traceback and report it)",
            )
        )
        sys.exit(1)
