"""MLflow's model directory read without MLflow: ``MLmodel``, its signature, input example and environment.

An MLflow model is a directory holding ``MLmodel`` (YAML: flavors, signature, where the
input example is) and the files it names. MLflow's column types and tensor specs map
onto Quayside's dtypes; its saved input example (a DataFrame in ``split`` orient, or
arrays under ``inputs``) becomes ``{name: array}``; its pinned ``requirements.txt``
(or the pip list of ``conda.yaml``) is what the model was saved with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from packaging.requirements import InvalidRequirement, Requirement

from quayside.errors import PackageError, SignatureError, UsageError
from quayside.packager.manifest import resolve_inside
from quayside.packager.signature import Arrays, Schema, TensorSpec, coerce_inputs

MLMODEL = "MLmodel"

# MLflow's column types (ColSpec) and tensor dtypes (numpy names) as Quayside dtypes.
COLUMN_TYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
}
# Requirements of MLflow itself: a Quayside package needs none of them to load or serve.
MLFLOW_DISTRIBUTIONS = {"mlflow", "mlflow-skinny", "mlflow-tracing"}


@dataclass(frozen=True)
class MlflowModel:
    """What an MLflow model directory says about itself."""

    root: Path
    flavors: Mapping[str, Mapping[str, Any]]
    signature: Mapping[str, Any] | None = None
    example_info: Mapping[str, Any] | None = None
    mlflow_version: str | None = None
    model_uuid: str | None = None
    python_version: str | None = None
    requirements: tuple[str, ...] = ()
    skipped_requirements: tuple[str, ...] = field(default=())

    def file(self, relative: str) -> Path:
        """A file the MLmodel names, refused if it leads outside the model directory."""
        path = resolve_inside(self.root, relative)
        if not path.exists():
            raise PackageError(f"the MLflow model names '{relative}', which is missing from {self.root}")
        return path


def read_mlflow_model(root: Path | str) -> MlflowModel:
    """Parse ``MLmodel`` and the environment files beside it."""
    root = Path(root)
    mlmodel = root / MLMODEL
    if not root.is_dir() or not mlmodel.is_file():
        raise UsageError(f"'{root}' is not an MLflow model directory: it has no {MLMODEL} file")
    try:
        data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise PackageError(f"{mlmodel} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("flavors"), Mapping):
        raise PackageError(f"{mlmodel} names no flavors; is it an MLflow model?")
    pyfunc = data["flavors"].get("python_function") or {}
    requirements, skipped = read_requirements(root)
    return MlflowModel(
        root=root,
        flavors=data["flavors"],
        signature=data.get("signature") or None,
        example_info=data.get("saved_input_example_info") or None,
        mlflow_version=data.get("mlflow_version"),
        model_uuid=data.get("model_uuid"),
        python_version=str(pyfunc.get("python_version") or "") or read_python_version(root),
        requirements=requirements,
        skipped_requirements=skipped,
    )


# --- environment -------------------------------------------------------------------------


def read_python_version(root: Path) -> str | None:
    path = root / "python_env.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return str(data["python"]) if data.get("python") else None


def _requirement_lines(root: Path) -> list[str]:
    requirements = root / "requirements.txt"
    if requirements.is_file():
        return requirements.read_text(encoding="utf-8").splitlines()
    conda = root / "conda.yaml"
    if conda.is_file():
        data = yaml.safe_load(conda.read_text(encoding="utf-8")) or {}
        for dependency in data.get("dependencies") or []:
            if isinstance(dependency, Mapping) and isinstance(dependency.get("pip"), list):
                return [str(line) for line in dependency["pip"]]
    return []


def read_requirements(root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The model's pinned pip requirements, and the lines that are not (``-r`` files, options, bare names)."""
    kept, skipped = [], []
    for raw in _requirement_lines(root):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            skipped.append(line)
            continue
        # An unpinned name cannot be carried over: its version here may not be the one it was saved with.
        (kept if requirement.specifier or requirement.url else skipped).append(str(requirement))
    return tuple(kept), tuple(skipped)


def without_mlflow(requirements: tuple[str, ...]) -> tuple[str, ...]:
    """Requirements less MLflow's own distributions, which a Quayside package does not load with."""
    return tuple(
        r for r in requirements if Requirement(r).name.lower().replace("_", "-") not in MLFLOW_DISTRIBUTIONS
    )


# --- signature ---------------------------------------------------------------------------


def _schema_entries(signature: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    raw = signature.get(key)
    if raw is None:
        return []
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        raise SignatureError(f"the MLflow signature's {key} are not valid JSON: {e}") from None
    if not isinstance(entries, list):
        raise SignatureError(f"the MLflow signature's {key} are not a list")
    return entries


def _column_spec(entry: Mapping[str, Any], index: int) -> TensorSpec:
    kind = entry.get("type")
    if kind not in COLUMN_TYPES:
        raise SignatureError(
            f"MLflow input column {entry.get('name', index)!r} has type {kind!r}, which Quayside cannot "
            f"describe (known: {', '.join(COLUMN_TYPES)})"
        )
    name = entry.get("name")
    if name is None:
        raise SignatureError("the MLflow signature has an unnamed input column; Quayside needs column names")
    return TensorSpec(str(name), COLUMN_TYPES[kind], (-1,))


def _tensor_spec(entry: Mapping[str, Any], index: int, count: int) -> TensorSpec:
    spec = entry.get("tensor-spec") or {}
    dtype_name = str(spec.get("dtype", ""))
    dtype_name = {"object": "string", "str": "string", "bool_": "bool"}.get(dtype_name, dtype_name)
    name = entry.get("name") or ("input" if count == 1 else f"input_{index}")
    shape = tuple(int(d) for d in spec.get("shape") or (-1,))
    return TensorSpec(str(name), dtype_name, shape)


def input_schema(signature: Mapping[str, Any] | None) -> Schema | None:
    """The MLflow signature's inputs as a Quayside schema (a table of columns, or tensors)."""
    if not signature:
        return None
    entries = _schema_entries(signature, "inputs")
    if not entries:
        return None
    if all(e.get("type") == "tensor" for e in entries):
        return Schema("tensors", tuple(_tensor_spec(e, i, len(entries)) for i, e in enumerate(entries)))
    if any(e.get("type") == "tensor" for e in entries):
        raise SignatureError("the MLflow signature mixes tensors and columns, which Quayside cannot describe")
    return Schema("table", tuple(_column_spec(e, i) for i, e in enumerate(entries)))


# --- input example -----------------------------------------------------------------------


def _example_json(model: MlflowModel) -> Any:
    info = model.example_info or {}
    path = info.get("artifact_path")
    if not path:
        return None
    return json.loads(model.file(str(path)).read_text(encoding="utf-8"))


def example_arrays(model: MlflowModel, schema: Schema | None) -> Arrays | None:
    """The saved input example as ``{name: array}`` in the schema's terms (or None when there is none)."""
    data = _example_json(model)
    if data is None:
        return None
    if isinstance(data, Mapping) and "columns" in data and "data" in data:
        rows = np.asarray(data["data"], dtype=object)
        columns = {str(c): rows[:, i] for i, c in enumerate(data["columns"])}
        return _coerce(columns, schema)
    if isinstance(data, Mapping) and "dataframe_records" in data:
        records = data["dataframe_records"]
        return _coerce({k: np.asarray([r[k] for r in records], dtype=object) for k in records[0]}, schema)
    inputs = data.get("inputs", data) if isinstance(data, Mapping) else data
    if isinstance(inputs, Mapping):
        return _coerce({str(k): np.asarray(v) for k, v in inputs.items()}, schema)
    name = schema.specs[0].name if schema is not None else "input"
    return _coerce({name: np.asarray(inputs)}, schema)


def _coerce(values: dict[str, np.ndarray], schema: Schema | None) -> Arrays:
    if schema is None:
        return {name: _plain(array) for name, array in values.items()}
    try:
        return coerce_inputs(values, schema)
    except SignatureError as e:
        raise SignatureError(f"the MLflow input example does not fit its signature: {e.message}") from None


def _plain(array: np.ndarray) -> np.ndarray:
    """An object column from JSON as numbers when every value is one, else as strings."""
    if array.dtype != object:
        return array
    values = array.tolist()
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    return array
