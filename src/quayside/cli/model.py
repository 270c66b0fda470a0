"""``quayside model ...``: look inside model packages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quayside.cli.console import human_size, out, print_json, styled
from quayside.cli.tables import parity_table
from quayside.packager.manifest import Manifest, PackageReader
from quayside.packager.signature import Schema

app = typer.Typer(help="Inspect model packages.", no_args_is_help=True)


def schema_table(title: str, schema: Schema) -> Table:
    """A signature schema as a table: name, dtype, shape, NaN allowed."""
    table = Table(title=f"{title} ({schema.kind})", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("dtype")
    table.add_column("shape")
    table.add_column("NaN/inf")
    for spec in schema.specs:
        shape = "(" + ", ".join(str(d) for d in spec.shape) + ("," if len(spec.shape) == 1 else "") + ")"
        table.add_row(spec.name, spec.dtype, shape, "allowed" if spec.allow_nan else "refused")
    return table


def _summary(root: Path, manifest: Manifest) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    servable = styled(("yes", "green")) if manifest.onnx_servable else styled("no")
    if manifest.flavor == "onnx":
        servable = styled(("yes", "green"), " (ONNX model)")
    rows = [
        ("name", manifest.name),
        ("path", str(root.resolve())),
        ("flavor", manifest.flavor),
        ("ONNX-servable", servable),
        ("size", f"{human_size(manifest.size)} in {len(manifest.files)} files (digests verified)"),
        ("digest", f"sha256:{manifest.digest()[:20]}…  (--json for all of it)"),
        ("created", manifest.created_at),
        ("source run", manifest.source_run or "-"),
        ("golden", _golden_outputs(manifest)),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def _golden_outputs(manifest: Manifest) -> str:
    if manifest.golden_missing is not None:
        return f"no outputs recorded: {manifest.golden_missing}"
    return f"outputs recorded for the input example ({', '.join(manifest.golden_outputs())})"


def _environment_table(manifest: Manifest) -> Table:
    env = manifest.environment
    table = Table(title=f"Environment (Python {env.python})", title_justify="left")
    table.add_column("native requirements")
    table.add_column("ONNX requirements")
    for i in range(max(len(env.requirements), len(env.onnx_requirements))):
        native = env.requirements[i] if i < len(env.requirements) else ""
        onnx = env.onnx_requirements[i] if i < len(env.onnx_requirements) else ""
        table.add_row(native, onnx)
    return table


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Model package directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON, for scripts.")] = False,
) -> None:
    """Show a package's flavor, signature, ONNX parity, size and environment (after verifying its files)."""
    reader = PackageReader.open(path)
    manifest = reader.manifest
    if as_json:
        body = manifest.to_dict() | {"digest": manifest.digest(), "size": manifest.size}
        print_json(body)
        return
    out.print(_summary(path, manifest))
    out.print(schema_table("Inputs", manifest.signature.inputs))
    out.print(schema_table("Outputs", manifest.signature.outputs))
    if manifest.onnx is not None:
        out.print(parity_table(manifest.onnx.parity))
    out.print(_environment_table(manifest))
