"""``quayside export bentoml MODEL``: a Quayside package as another tool's project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, out, styled

app = typer.Typer(help="Export Quayside packages as other tools' projects.", no_args_is_help=True)


@app.command("bentoml")
def bentoml(
    model: Annotated[
        str,
        typer.Argument(
            help="Model package directory or model URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/PATH).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Directory to write (default: ./NAME-bento).")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust", help="Allow a Bento that unpickles a native model (no ONNX model in the package)."
        ),
    ] = False,
) -> None:
    """Write a BentoML service (the @bentoml.service API), its bentofile and the model.

    An ONNX-servable package is served on ONNX Runtime alone, with the same input
    checks as quayside serve; any other package through quayside.load_model. Serve it
    with `bentoml serve service:CLASS --working-dir DIR` (pip install 'quayside[bentoml]').
    """
    from quayside.compose.models import resolve_model
    from quayside.names import path_component
    from quayside.packager.exporters.bentoml import export_bentoml
    from quayside.packager.manifest import read_manifest

    path = resolve_model(model).path
    # The name comes from the package (anyone's): encoded, so it cannot point outside the current directory.
    destination = output or Path(f"{path_component(read_manifest(path).name)}-bento")
    bento = export_bentoml(path, destination, trust=trust)
    out.print(styled(("exported", "green"), f" {model} to {destination}"))
    out.print(f"  bentoml serve {bento.service} --working-dir {destination}")
    err.print(f"requirements: {destination / 'requirements.txt'} (pip install -r, or bentoml build)")
