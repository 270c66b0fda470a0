"""``quayside convert PATH``: add a parity-checked ONNX model to a package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, out, styled
from quayside.cli.tables import parity_table
from quayside.config import load_settings
from quayside.packager.convert import Tolerance
from quayside.packager.package import convert_package


def convert(
    path: Annotated[Path, typer.Argument(help="Model package directory.")],
    trust: Annotated[
        bool,
        typer.Option("--trust", help="Allow loading a pickled native model (runs code from the package)."),
    ] = False,
    rtol: Annotated[
        float | None,
        typer.Option(help="Relative tolerance for parity (default: QUAYSIDE_PARITY_RTOL or 1e-4)."),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option(help="Absolute tolerance for parity (default: QUAYSIDE_PARITY_ATOL or 1e-5)."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            min=0, help="Rows sampled within the example's ranges (default: QUAYSIDE_PARITY_SAMPLES or 1000)."
        ),
    ] = None,
    opset: Annotated[
        int | None, typer.Option(min=1, help="ONNX opset (default: the converter's newest).")
    ] = None,
) -> None:
    """Convert a package's native model to ONNX and keep it only if parity holds.

    Both models run on the input example plus sampled rows; each output must agree
    within the tolerance (labels exactly). On success the package becomes
    ONNX-servable; on failure it is left unchanged and the command exits 1.
    """
    settings = load_settings()
    tolerance = Tolerance(
        rtol=settings.parity_rtol if rtol is None else rtol,
        atol=settings.parity_atol if atol is None else atol,
        samples=settings.parity_samples if samples is None else samples,
    )
    err.print(f"converting {path} to ONNX and measuring parity on {tolerance.samples} sampled rows …")
    manifest = convert_package(
        path, trust=trust, tolerance=tolerance, opset=opset if opset is not None else settings.onnx_opset
    )
    assert manifest.onnx is not None
    out.print(
        styled(
            ("converted", "green"), f" {manifest.name}: {manifest.onnx.file} (opset {manifest.onnx.opset})"
        )
    )
    out.print(parity_table(manifest.onnx.parity))
