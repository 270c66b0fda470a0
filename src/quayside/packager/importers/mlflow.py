"""``quayside import mlflow PATH``: an MLflow model directory as a Quayside package.

MLflow is not needed: ``MLmodel`` and the environment files are read as YAML and
text (:mod:`.mlflow_format`), the native model is loaded from its own format
(:mod:`.mlflow_native`), and the package is written by the ordinary save path —
signature inputs from MLflow's signature, outputs from the model's predictions on
MLflow's input example, ONNX conversion with its parity check where the flavor
converts. A conversion that fails or misses parity leaves a native package and
says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quayside.errors import ConversionError, UsageError
from quayside.packager.convert import Tolerance
from quayside.packager.importers.mlflow_format import (
    MlflowModel,
    example_arrays,
    input_schema,
    read_mlflow_model,
    without_mlflow,
)
from quayside.packager.importers.mlflow_native import NativeModel, load_native
from quayside.packager.manifest import Manifest
from quayside.packager.package import save_model

# ONNX is already ONNX; a plain Python model has no converter.
NOT_CONVERTIBLE = ("onnx", "python")


@dataclass(frozen=True)
class ImportResult:
    """The package written, the MLflow flavor it came from, and why ONNX was not kept (if it was not)."""

    manifest: Manifest
    mlflow_flavor: str
    onnx_error: str | None = None
    skipped_requirements: tuple[str, ...] = ()


def _requirements(source: MlflowModel, native: NativeModel) -> tuple[str, ...]:
    # A custom pyfunc subclasses mlflow.pyfunc.PythonModel: unpickling it imports mlflow.
    return source.requirements if native.flavor == "python" else without_mlflow(source.requirements)


def _metadata(source: MlflowModel, native: NativeModel) -> dict[str, object]:
    return {
        "imported_from": {
            "format": "mlflow",
            "path": str(source.root.resolve()),
            "flavor": native.mlflow_flavor,
            "mlflow_version": source.mlflow_version,
            "model_uuid": source.model_uuid,
            "python": source.python_version,
            "requirements": list(source.requirements),
        }
    }


def import_mlflow_model(
    source: str | Path,
    destination: str | Path,
    *,
    name: str | None = None,
    trust: bool = False,
    to_onnx: bool = True,
    tolerance: Tolerance = Tolerance(),
    opset: int | None = None,
) -> ImportResult:
    """Write the MLflow model at ``source`` as a Quayside package at ``destination``.

    Pickled models (scikit-learn pickle/cloudpickle, PyTorch, custom pyfunc) need
    ``trust=True``; skops, XGBoost, LightGBM boosters and ONNX do not. With
    ``to_onnx`` the native model is converted when its flavor can be, and kept as
    ONNX only if parity holds.
    """
    mlflow_model = read_mlflow_model(source)
    native = load_native(mlflow_model, trust=trust)
    # An ONNX graph describes its own inputs; MLflow's signature of it is a copy at best.
    inputs = None if native.flavor == "onnx" else input_schema(mlflow_model.signature)
    example = example_arrays(mlflow_model, inputs)
    if example is None:
        raise UsageError(
            f"the MLflow model at '{source}' has no saved input example, which Quayside needs to "
            "describe its outputs and check ONNX parity; save it again with input_example="
        )

    def save(convert: bool) -> Manifest:
        return save_model(
            native.model,
            destination,
            flavor=native.flavor,
            inputs=inputs,
            input_example=example,
            to_onnx=convert,
            extra_requirements=_requirements(mlflow_model, native),
            name=name or Path(source).resolve().name,
            metadata=_metadata(mlflow_model, native),
            tolerance=tolerance,
            opset=opset,
        )

    skipped = mlflow_model.skipped_requirements
    if to_onnx and native.flavor not in NOT_CONVERTIBLE:
        try:
            return ImportResult(save(True), native.mlflow_flavor, None, skipped)
        except ConversionError as e:  # parity failures too: the native package is still useful
            return ImportResult(save(False), native.mlflow_flavor, e.message, skipped)
    return ImportResult(save(False), native.mlflow_flavor, None, skipped)
