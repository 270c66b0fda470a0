"""MLflow model versions as Quayside registered versions, and MLflow's own files back out of them.

MLflow's client creates a model version from a ``source`` URI. For
``mlflow.register_model("runs:/<run id>/model", name)`` MLflow 3 sends the run's artifact
URI, ``mlflow-artifacts:/<run id>/model`` (the run has an ``MLmodel`` there), and the
run id; for a logged model's URI it sends ``models:/m-<id>`` and no run id. Quayside
keeps a logged model's files as artifacts of its source run
(:mod:`quayside.tracking.mlflow_models`), so every source names an MLflow model
directory in one run's artifacts (:func:`resolve_source`).

:func:`register_mlflow_version` imports that directory as ``quayside import mlflow``
does, without trust: a flavor that loads as data (skops, XGBoost, LightGBM, ONNX) is
converted to ONNX and kept so if parity holds. The server never unpickles what a client
uploaded, so a model MLflow stored as a pickle (scikit-learn's and LightGBM's
scikit-learn wrappers' pickle and cloudpickle formats) is registered natively without
being loaded: a package of the ``python`` flavor whose model file is MLflow's own pickle,
whose ``predict`` is the estimator's as MLflow's pyfunc calls it, described by MLflow's
signature. Loading or serving it needs trust (``--trust``), where the operator chooses
to give it; the version's description and the package's metadata say so.

Either way the MLflow model directory itself is kept inside the package, each file
listed under ``mlflow/`` in ``quayside.yaml``, so the package digest covers MLflow's
files as well as Quayside's, and the registry's copy holds them. MLflow's client
downloads them through the proxied artifact routes at :func:`mlflow_download_uri`
(``mlflow-artifacts:/registered-models/<name>/<version>``), so
``mlflow.pyfunc.load_model("models:/<name>@<alias>")`` loads exactly what was registered.
"""

from __future__ import annotations

import os
import platform
import posixpath
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.errors import NotFoundError, PackageIntegrityError, UntrustedPackageError, UsageError
from quayside.names import check_model_name, shown
from quayside.packager.manifest import FileEntry, Manifest, file_entry, write_manifest

if TYPE_CHECKING:
    from quayside.packager.environment import Environment
    from quayside.packager.importers.mlflow_format import MlflowModel
    from quayside.packager.signature import Schema
    from quayside.registry.entities import ModelVersion
    from quayside.registry.store import RegistryStore
    from quayside.tracking.entities import ArtifactInfo
    from quayside.tracking.store import TrackingStore

MLFLOW_FILES = "mlflow"
"""The folder of a package that holds the MLflow model directory it was registered from."""
REGISTERED_MODELS = "registered-models"
"""The namespace of the proxied artifact routes that serves registered versions' MLflow files."""
ARTIFACTS_SCHEME = "mlflow-artifacts"
PICKLE_FORMATS = ("pickle", "cloudpickle")
ESTIMATORS = {"sklearn": "scikit-learn model", "lightgbm": "LightGBM scikit-learn model"}
"""The MLflow flavors whose pickled estimators are registered natively, as messages name them."""
# The python flavor's model file (quayside.packager.flavors.python.MODEL_FILE), not imported so
# that this module stays light for the permission table, which imports it.
PYTHON_MODEL_FILE = "model.pkl"
# What the python flavor needs to load and call a pickled estimator on a table (its requirements).
PYTHON_FLAVOR_REQUIREMENTS = ("cloudpickle", "numpy", "pandas")
PREDICTION = "prediction"


@dataclass(frozen=True)
class MlflowSource:
    """Where a model version's MLflow model directory is: a folder of a run's artifacts."""

    run_id: str
    path: str


@dataclass(frozen=True)
class RegisteredMlflowPath:
    """A path of the ``registered-models`` namespace: a version and a path among its MLflow files."""

    name: str
    version: int
    path: str


# --- sources ---------------------------------------------------------------------------------------


def _run_path(rest: str, source: str) -> MlflowSource:
    run_id, _, path = rest.strip("/").partition("/")
    if not run_id:
        raise UsageError(f"model version source {shown(source)} names no run: expected <run id>/<path>")
    return MlflowSource(run_id, posixpath.normpath(path) if path else "")


def resolve_source(tracking: TrackingStore, source: str, run_id: str | None = None) -> MlflowSource:
    """The run and artifact folder a model version's ``source`` names.

    ``runs:/<run id>/<path>``, ``mlflow-artifacts:/<run id>/<path>`` (the form MLflow's client
    sends for ``runs:/`` URIs; a ``//host`` part is this server and is ignored) and
    ``models:/m-<id>`` (a logged model: its files are an artifact folder of its source run).
    A ``run_id`` given beside the source must be the run it names.
    """
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "runs":
        found = _run_path(parsed.netloc + parsed.path if parsed.netloc else parsed.path, source)
    elif parsed.scheme == ARTIFACTS_SCHEME:
        found = _run_path(parsed.path, source)
    elif parsed.scheme == "models" and parsed.path.strip("/").startswith("m-"):
        found = _logged_model(tracking, parsed.path.strip("/"))
    else:
        raise UsageError(
            f"model version source {shown(source)} is not one Quayside registers from: use "
            "runs:/<run id>/<path>, models:/m-<logged model id> or mlflow-artifacts:/<run id>/<path>"
        )
    if run_id and run_id != found.run_id:
        raise UsageError(
            f"model version source {shown(source)} is an artifact of run '{found.run_id}', "
            f"not of run '{run_id}'"
        )
    tracking.get_run(found.run_id)  # NotFoundError for an unknown run
    return found


def _logged_model(tracking: TrackingStore, reference: str) -> MlflowSource:
    from quayside.tracking.mlflow_models import MlflowModelStore

    model_id, _, inside = reference.partition("/")
    model = MlflowModelStore(tracking.sessions).get(model_id)
    path = posixpath.join(model.artifact_path, inside) if inside else model.artifact_path
    return MlflowSource(model.run_id, posixpath.normpath(path))


# --- registering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowPackage:
    """A package written from an MLflow model directory, and how its model is served."""

    manifest: Manifest
    mlflow_flavor: str
    note: str
    """One line for the version's description: how the model was imported (ONNX, or native and why)."""


def register_mlflow_version(
    tracking: TrackingStore,
    registry: RegistryStore,
    name: str,
    source: str,
    *,
    run_id: str | None,
    description: str,
    tags: Mapping[str, str],
    actor: str,
) -> ModelVersion:
    """Register the MLflow model that ``source`` names as the next version of ``name``.

    The MLflow model directory is copied out of the run's artifacts (a snapshot: the run may
    still change), imported (:func:`package_mlflow_model`) with its own files kept under
    ``mlflow/``, and registered with ``source`` and the run as its provenance. The version's
    description is the caller's, followed by a line saying how the model was imported; ``tags``
    are the new version's own tags. An unknown run, logged model or folder is a
    :class:`~quayside.errors.NotFoundError`; a folder that is not an MLflow model, or one
    Quayside cannot describe, a :class:`~quayside.errors.UsageError`.
    """
    from quayside.scratch import temporary_directory

    check_model_name(name)
    location = resolve_source(tracking, source, run_id)
    with temporary_directory(tracking.artifacts.work_dir, "mlflow-register") as scratch:
        model_dir = _copy_out(tracking, location, scratch / "source")
        provenance = {"source": source, "run_id": location.run_id, "path": location.path}
        imported = package_mlflow_model(model_dir, scratch / "package", name=name, provenance=provenance)
        return registry.register_version(
            name,
            scratch / "package",
            actor=actor,
            source=source,
            source_run_id=location.run_id,
            description=f"{description}\n\n{imported.note}" if description else imported.note,
            version_tags=tags,
        )


def _copy_out(tracking: TrackingStore, location: MlflowSource, destination: Path) -> Path:
    where = (
        f"artifact '{location.path}' of run '{location.run_id}'"
        if location.path
        else (f"the artifacts of run '{location.run_id}'")
    )
    try:
        copied = tracking.download_artifacts(location.run_id, location.path, destination)
    except NotFoundError:
        raise NotFoundError(f"no MLflow model at {where}: the run has no such artifact") from None
    if not copied.is_dir() or not (copied / "MLmodel").is_file():
        raise UsageError(
            f"{where} is not an MLflow model: it has no MLmodel file; register the folder that "
            "mlflow.<flavor>.log_model wrote (runs:/<run id>/<its name>, or models:/m-<id>)"
        )
    return copied


def package_mlflow_model(
    model_dir: Path, destination: Path, *, name: str, provenance: Mapping[str, Any]
) -> MlflowPackage:
    """Write the MLflow model at ``model_dir`` as a package at ``destination``, keeping MLflow's files.

    Never unpickles: a flavor that loads as data is imported (and converted to ONNX where parity
    holds); a pickled estimator becomes a native ``python``-flavor package without being loaded.
    """
    from quayside.packager.importers.mlflow import import_mlflow_model
    from quayside.packager.importers.mlflow_format import read_mlflow_model

    mlflow_model = read_mlflow_model(model_dir)
    try:
        result = import_mlflow_model(model_dir, destination, name=name, trust=False, to_onnx=True)
    except UntrustedPackageError as refused:
        manifest, flavor, what = _native_package(mlflow_model, destination, name, refused.message)
        note = (
            f"Registered natively from MLflow's {what}: Quayside does not unpickle uploaded models, "
            "so it was not converted to ONNX; loading or serving it runs the pickle (--trust)."
        )
        return MlflowPackage(_keep_mlflow_files(destination, manifest, model_dir, provenance), flavor, note)
    manifest = result.manifest
    if manifest.onnx_servable:
        note = f"Imported from MLflow's {result.mlflow_flavor} model; served as ONNX (parity checked)."
    elif manifest.flavor == "onnx":
        note = "Imported from MLflow's ONNX model."
    else:
        why = f": {result.onnx_error}" if result.onnx_error else ""
        note = f"Imported from MLflow's {result.mlflow_flavor} model; served natively (not converted to ONNX{why})."
    kept = _keep_mlflow_files(destination, manifest, model_dir, provenance)
    return MlflowPackage(kept, result.mlflow_flavor, note)


# --- pickled estimators, packaged without being loaded ---------------------------------------------


def _pickled_estimator(model: MlflowModel, refusal: str) -> tuple[Path, str, str]:
    """The pickle file of an MLflow scikit-learn-style model, its MLflow flavor and pickle format."""
    for flavor, file_key, default_format in (
        ("sklearn", "pickled_model", "cloudpickle"),
        ("lightgbm", "data", ""),
    ):
        config = model.flavors.get(flavor)
        pickle_format = str((config or {}).get("serialization_format") or default_format)
        if config and pickle_format in PICKLE_FORMATS:
            return model.file(str(config[file_key])), flavor, pickle_format
    raise UsageError(
        f"the server does not load this MLflow model ({refusal.rstrip('.')}), and registers natively "
        "only pickled scikit-learn and LightGBM estimators; import it where you trust it "
        "(quayside import mlflow --trust) and register that package (quayside registry register)"
    )


def _native_package(
    model: MlflowModel, destination: Path, name: str, refusal: str
) -> tuple[Manifest, str, str]:
    """A ``python``-flavor package whose model file is MLflow's pickle, described by MLflow's signature."""
    from quayside.names import check_name
    from quayside.packager.example import encode_example
    from quayside.packager.importers.mlflow_format import example_arrays, input_schema
    from quayside.packager.signature import Signature

    pickle_file, mlflow_flavor, pickle_format = _pickled_estimator(model, refusal)
    what = f"{ESTIMATORS[mlflow_flavor]} ({pickle_format})"
    inputs = input_schema(model.signature)
    outputs = output_schema(model.signature)
    if inputs is None or outputs is None:
        raise UsageError(
            f"MLflow stored this {what} as a pickle, which Quayside registers without loading it, "
            "so it needs MLflow's signature of the model's inputs and outputs; log the model with "
            "signature= (or input_example=), or import it where you trust it (quayside import mlflow --trust)"
        )
    example = example_arrays(model, inputs)
    destination.mkdir(parents=True)
    (destination / PYTHON_MODEL_FILE).write_bytes(pickle_file.read_bytes())
    manifest = Manifest(
        name=check_name("package", name),
        flavor="python",
        files=(file_entry(destination, PYTHON_MODEL_FILE),),
        signature=Signature(inputs, outputs),
        environment=_environment(model),
        input_example=encode_example(example) if example is not None else None,
        flavor_options={"mlflow_flavor": mlflow_flavor, "pickle_format": pickle_format},
        metadata={"imported_from": _imported_from(model, mlflow_flavor), "native_because": refusal},
    )
    write_manifest(destination, manifest)
    return manifest, mlflow_flavor, what


def _environment(model: MlflowModel) -> Environment:
    """The Python and pins the model was pickled with, and the python flavor's own needs MLflow did not pin."""
    from importlib import metadata

    from quayside.packager.environment import Environment
    from quayside.packager.importers.mlflow_format import without_mlflow

    own = without_mlflow(model.requirements)
    named = {_distribution(r) for r in own}
    extra = []
    for requirement in PYTHON_FLAVOR_REQUIREMENTS:
        if requirement in named:
            continue
        try:
            extra.append(f"{requirement}=={metadata.version(requirement)}")
        except metadata.PackageNotFoundError:
            continue  # not on the server, so no version to pin: where it is served, MLflow's pins decide
    return Environment(model.python_version or platform.python_version(), (*own, *extra))


def _imported_from(model: MlflowModel, mlflow_flavor: str) -> dict[str, Any]:
    return {
        "format": "mlflow",
        "flavor": mlflow_flavor,
        "mlflow_version": model.mlflow_version,
        "model_uuid": model.model_uuid,
        "python": model.python_version,
        "requirements": list(model.requirements),
    }


def _distribution(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower().replace("_", "-")


def output_schema(signature: Mapping[str, Any] | None) -> Schema | None:
    """MLflow's output signature as the python flavor names outputs: one unnamed output is
    ``prediction``; named columns or tensors keep their names (a DataFrame's columns)."""
    from quayside.packager.importers.mlflow_format import COLUMN_TYPES
    from quayside.packager.signature import Schema, TensorSpec

    if not signature or not signature.get("outputs"):
        return None
    entries = _entries(signature["outputs"])
    specs = []
    for entry in entries:
        name = entry.get("name") or (PREDICTION if len(entries) == 1 else None)
        if name is None:
            raise UsageError("the MLflow signature has several unnamed outputs, which Quayside cannot name")
        if entry.get("type") == "tensor":
            spec = entry.get("tensor-spec") or {}
            dtype = str(spec.get("dtype", ""))
            dtype = {"object": "string", "str": "string", "bool_": "bool"}.get(dtype, dtype)
            shape = tuple(int(d) for d in spec.get("shape") or (-1,))
            specs.append(TensorSpec(str(name), dtype, shape))
        elif entry.get("type") in COLUMN_TYPES:
            specs.append(TensorSpec(str(name), COLUMN_TYPES[entry["type"]], (-1,)))
        else:
            raise UsageError(
                f"MLflow output {str(name)!r} has type {entry.get('type')!r}, which Quayside cannot describe"
            )
    return Schema("tensors", tuple(specs))


def _entries(raw: Any) -> list[Mapping[str, Any]]:
    import json

    entries = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise UsageError("the MLflow signature's outputs are not a list of specs")
    return entries


# --- MLflow's files, kept in the package -----------------------------------------------------------


def _mlflow_files(model_dir: Path) -> list[str]:
    """Every regular file of the MLflow model directory, as a path relative to it (symlinks skipped)."""
    found = []
    for directory, dirs, files in os.walk(model_dir):
        dirs[:] = sorted(d for d in dirs if not (Path(directory) / d).is_symlink())
        for file in sorted(files):
            path = Path(directory) / file
            if path.is_file() and not path.is_symlink():
                found.append(path.relative_to(model_dir).as_posix())
    return found


def _keep_mlflow_files(
    root: Path, manifest: Manifest, model_dir: Path, provenance: Mapping[str, Any]
) -> Manifest:
    """Copy the MLflow model directory into ``root/mlflow/``, list its files, and rewrite the manifest."""
    import shutil

    entries: list[FileEntry] = []
    for relative in _mlflow_files(model_dir):
        packaged = f"{MLFLOW_FILES}/{relative}"
        target = root / packaged
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_dir / relative, target)
        entries.append(file_entry(root, packaged))
    imported_from = dict(manifest.metadata.get("imported_from") or {})
    # The folder it was read from was a scratch copy; where it came from is the source URI.
    imported_from["path"] = str(provenance.get("source", ""))
    metadata = dict(manifest.metadata) | {
        "imported_from": imported_from,
        "mlflow": {"files": f"{MLFLOW_FILES}/", **dict(provenance)},
    }
    kept = replace(manifest.with_files(entries), metadata=metadata, source_run=provenance.get("run_id"))
    write_manifest(root, kept)
    return kept


# --- MLflow's files, served back -------------------------------------------------------------------


def mlflow_download_uri(version: ModelVersion) -> str:
    """Where MLflow's client downloads a version's MLflow files from: this server's proxied artifacts."""
    return f"{ARTIFACTS_SCHEME}:/{REGISTERED_MODELS}/{version.name}/{version.version}"


def registered_path(path: str) -> RegisteredMlflowPath | None:
    """``registered-models/<name>/<version>[/<path>]`` as its parts; None for a run's artifact path."""
    parts = path.strip("/").split("/")
    if parts[0] != REGISTERED_MODELS:
        return None
    if len(parts) < 3 or not parts[2].isascii() or not parts[2].isdigit():
        raise UsageError(
            f"a registered model's MLflow files are at {REGISTERED_MODELS}/<name>/<version>[/<path>], "
            f"not {shown(path)}"
        )
    inside = "/".join(parts[3:])
    return RegisteredMlflowPath(
        check_model_name(parts[1]), int(parts[2]), posixpath.normpath(inside) if inside else ""
    )


def _version_files(registry: RegistryStore, where: RegisteredMlflowPath) -> tuple[Path, Manifest]:
    from quayside.packager.manifest import read_manifest

    root = registry.package_dir(where.name, where.version)
    manifest = read_manifest(root)
    if not any(f.path.startswith(f"{MLFLOW_FILES}/") for f in manifest.files):
        raise NotFoundError(
            f"version {where.version} of '{where.name}' was not registered from an MLflow model, so it "
            f"has no MLflow files; load it with Quayside (quayside.load_model('models:/{where.name}/"
            f"{where.version}'))"
        )
    return root, manifest


def list_mlflow_files(registry: RegistryStore, where: RegisteredMlflowPath) -> list[ArtifactInfo]:
    """The files and folders directly under ``where.path`` among a version's MLflow files."""
    from quayside.tracking.entities import ArtifactInfo

    _root, manifest = _version_files(registry, where)
    prefix = f"{MLFLOW_FILES}/{where.path}/" if where.path else f"{MLFLOW_FILES}/"
    exact = f"{MLFLOW_FILES}/{where.path}"
    children: dict[str, ArtifactInfo] = {}
    for entry in manifest.files:
        if where.path and entry.path == exact:
            return [ArtifactInfo(where.path, False, entry.size)]
        if not entry.path.startswith(prefix):
            continue
        head, _, rest = entry.path.removeprefix(prefix).partition("/")
        child = posixpath.join(where.path, head) if where.path else head
        children[child] = ArtifactInfo(child, True, None) if rest else ArtifactInfo(child, False, entry.size)
    if where.path and not children:
        raise NotFoundError(f"version {where.version} of '{where.name}' has no MLflow file '{where.path}'")
    return [children[c] for c in sorted(children)]


def mlflow_file(registry: RegistryStore, where: RegisteredMlflowPath) -> Path:
    """Where one of a version's MLflow files lies (listed in its manifest, inside its package)."""
    from quayside.packager.manifest import resolve_inside, sha256_file

    root, manifest = _version_files(registry, where)
    packaged = f"{MLFLOW_FILES}/{where.path}"
    entry = next((f for f in manifest.files if f.path == packaged), None) if where.path else None
    if entry is None:
        raise NotFoundError(f"version {where.version} of '{where.name}' has no MLflow file '{where.path}'")
    # MLflow loads what it downloads: a file that no longer matches what was registered is refused.
    path = resolve_inside(root, packaged)
    if sha256_file(path) != entry.sha256:
        raise PackageIntegrityError(
            f"MLflow file '{where.path}' of version {where.version} of '{where.name}' does not match "
            "its sha256 in the package: the registry's copy was altered"
        )
    return path


def refuse_upload(where: RegisteredMlflowPath) -> UsageError:
    """Why nothing is written under a registered version: its package, MLflow's files too, is immutable."""
    return UsageError(
        f"version {where.version} of '{where.name}' is registered, and its files (MLflow's included) "
        "never change; log the model to a run and register a new version"
    )
