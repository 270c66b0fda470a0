"""``quayside import mlflow PATH``: bring another tool's model into a Quayside package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, out, styled
from quayside.cli.tables import parity_table
from quayside.config import Settings, load_settings
from quayside.errors import UsageError
from quayside.packager.convert import Tolerance

app = typer.Typer(help="Import models saved by other tools as Quayside packages.", no_args_is_help=True)


def mlflow_directory(source: str, settings: Settings) -> Path:
    """The directory ``source`` names: a path, ``runs:/RUN_ID/PATH`` or MLflow 3's logged model
    ``models:/m-ID`` in the tracking store or server."""
    if source.startswith("models:/"):
        from quayside.compose.models import logged_model_directory
        from quayside.tracking.mlflow_models import logged_model_id

        model_id = logged_model_id(source)
        if model_id is None:
            raise UsageError(
                f"'{source}' is not an MLflow logged model (models:/m-<id>); a registered version is "
                "already a Quayside package: use it as it is (quayside serve, export, load_model)"
            )
        return logged_model_directory(model_id, settings)
    if not source.startswith("runs:/"):
        return Path(source)
    from quayside.compose.models import run_artifact_resolver
    from quayside.registry.uris import parse_model_uri

    uri = parse_model_uri(source)
    assert uri.run_id is not None and uri.artifact_path is not None
    return run_artifact_resolver(settings)(uri.run_id, uri.artifact_path)


@app.command("mlflow")
def mlflow(
    source: Annotated[
        str,
        typer.Argument(
            metavar="PATH|runs:/RUN_ID/PATH|models:/m-ID",
            help="MLflow model directory (the one holding MLmodel), or runs:/RUN_ID/PATH or MLflow 3's "
            "models:/m-ID for one an MLflow script logged into Quayside's tracking "
            "(mlflow.<flavor>.log_model).",
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Package directory to write (default: ./NAME).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Package name (default: the MLflow model directory's name).")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option("--trust", help="Allow loading a pickled model (unpickling runs code from the file)."),
    ] = False,
    onnx: Annotated[
        bool, typer.Option("--onnx/--no-onnx", help="Convert to ONNX (kept only if parity holds).")
    ] = True,
) -> None:
    """Import an MLflow model (sklearn, xgboost, lightgbm, onnx, pytorch or pyfunc flavor).

    The signature, input example and pinned requirements are carried over (MLflow's own
    list is kept in the package's metadata), and the model is converted to ONNX with a
    parity check where its flavor allows. MLflow itself is not needed. skops (LightGBM's
    scikit-learn wrappers included), XGBoost, LightGBM boosters and ONNX import as data;
    pickles need --trust (PyTorch's pickle and pt2 formats and custom pyfunc models too),
    and the modules their classes come from must be importable.
    """
    from quayside.packager.importers.mlflow import import_mlflow_model

    settings = load_settings()
    path = mlflow_directory(source, settings)
    package_name = name or path.resolve().name
    destination = output or Path(package_name)
    tolerance = Tolerance(settings.parity_rtol, settings.parity_atol, settings.parity_samples)
    err.print(f"importing the MLflow model at {source} …")
    result = import_mlflow_model(
        path,
        destination,
        name=package_name,
        trust=trust,
        to_onnx=onnx,
        tolerance=tolerance,
        opset=settings.onnx_opset,
    )
    manifest = result.manifest
    out.print(
        styled(
            ("imported", "green"),
            f" {manifest.name} ({result.mlflow_flavor} → {manifest.flavor}) to {destination}",
        )
    )
    if manifest.onnx is not None:
        out.print(parity_table(manifest.onnx.parity))
    elif result.onnx_error:
        err.print(styled(("not converted to ONNX:", "yellow"), f" {result.onnx_error}"))
    if result.skipped_requirements:
        err.print(f"requirements not carried over (not pinned): {', '.join(result.skipped_requirements)}")
