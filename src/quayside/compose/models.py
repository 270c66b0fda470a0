"""Model sources: paths and model URIs resolved to verified packages, wherever a model is taken.

The registry resolves URIs (:mod:`quayside.registry.uris`) but may not import tracking,
so this module hands it the lookup for ``runs:/<run_id>/<path>``: a copy through the
tracking backend (the local store, whatever its artifact root, or a ``quayside server``)
into the package cache, once per package digest. ``models:/`` URIs reach the cache
through the registry backend's ``package_dir`` (a remote artifact root or a server). Plain paths
never touch a database, so ``quayside.load_model("dir")`` stays as light as before.
MLflow 3's ``models:/m-<id>`` (a logged model, not a registered version) resolves through
tracking to the folder of the run that holds the model's files (:func:`logged_model_directory`).
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quayside import scratch
from quayside.config import Settings, load_settings
from quayside.errors import NotFoundError
from quayside.packager.manifest import MANIFEST_NAME, Manifest, PackageReader, read_manifest
from quayside.packager.package import LoadedModel, OnnxSessionConfig, Runtime
from quayside.packager.package import load_model as load_package

if TYPE_CHECKING:
    from quayside.registry.uris import ResolvedModel, RunArtifactPath
    from quayside.tracking.backend import TrackingBackend

# Importing this module (``quayside.load_model`` does) loads neither the registry nor tracking:
# the serving image must not need them. It never imports packager.docker either (that is
# compose.images'): the server imports ``quayside``, which names this module, and may not reach it.

MODEL_URI_PREFIXES = ("models:/", "runs:/")


def run_artifact_resolver(settings: Settings) -> RunArtifactPath:
    """``(run_id, path) -> local directory`` of a package logged in a run, from the tracking settings.

    A package (a folder with ``quayside.yaml``) comes down through the tracking backend's copy
    method into the package cache, once per digest: each resolution fetches only the manifest to
    learn the digest. Another folder (an MLflow model, for ``quayside import``) is copied afresh.
    """

    def run_artifact_path(run_id: str, path: str) -> Path:
        from quayside.artifacts.cache import PackageCache, home_cache_dir
        from quayside.tracking.client import backend_for

        backend = backend_for(settings)
        backend.get_run(run_id)
        cache = PackageCache(home_cache_dir(settings.home))
        digest = _logged_package_digest(backend, run_id, path, cache.root)
        if digest is None:
            return _run_folder(backend, settings, run_id, path)

        def download(folder: Path) -> None:
            downloaded = backend.download_artifacts(run_id, path, folder.parent / "download")
            downloaded.rename(folder)

        return cache.fill(digest, download, source=f"artifact '{path}' of run '{run_id}'")

    return run_artifact_path


def _logged_package_digest(backend: TrackingBackend, run_id: str, path: str, cache_root: Path) -> str | None:
    """The digest of the package logged at ``path`` of a run (its manifest's), or None if it holds none."""
    cache_root.mkdir(parents=True, exist_ok=True)
    with scratch.temporary_directory(cache_root, "manifest") as folder:
        try:
            backend.download_artifacts(run_id, f"{path.rstrip('/')}/{MANIFEST_NAME}", folder)
        except NotFoundError:
            return None
        if not (folder / MANIFEST_NAME).is_file():
            return None
        return read_manifest(folder).digest()


def _run_folder(backend: TrackingBackend, settings: Settings, run_id: str, path: str) -> Path:
    """A fresh local copy of a run's artifact folder that is not a package, replaced whole each time."""
    cache = settings.home / "cache" / "runs" / run_id
    staging = cache / f".download-{uuid.uuid4().hex}"
    try:
        downloaded = backend.download_artifacts(run_id, path, staging)
        target = cache / path.replace("/", "__")
        shutil.rmtree(target, ignore_errors=True)
        downloaded.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def logged_model_directory(model_id: str, settings: Settings) -> Path:
    """The local directory of an MLflow logged model's files (``models:/<model_id>``), from the
    tracking settings: its run's artifact folder, or a download of it from the server."""
    from quayside.tracking.client import backend_for

    try:
        run_id, path = backend_for(settings).logged_model_files(model_id)
    except NotFoundError as e:
        raise NotFoundError(f"'models:/{model_id}': {e.message}") from None
    return run_artifact_resolver(settings)(run_id, path)


def resolve_model(model: str | Path, *, settings: Settings | None = None) -> ResolvedModel:
    """The local package directory of a path or model URI."""
    from quayside.registry.uris import is_model_uri, resolve_model_uri

    if not is_model_uri(str(model)):
        return resolve_model_uri(model)
    settings = settings or load_settings()
    if str(model).startswith("runs:/"):
        return resolve_model_uri(model, None, run_artifact_resolver(settings))
    from quayside.compose.clients import RegistryClient

    return RegistryClient(settings=settings).resolve(model)


def resolve_registered(
    model_uri: str, *, settings: Settings | None = None
) -> tuple[Path, str | None, str | None]:
    """The package directory a path or model URI names, and its registered name and version if any."""
    resolved = resolve_model(model_uri, settings=settings)
    if resolved.version is None:
        return resolved.path, None, None
    return resolved.path, resolved.version.name, str(resolved.version.version)


def load_model(
    model: str | Path,
    *,
    trust: bool = False,
    runtime: Runtime = "auto",
    session: OnnxSessionConfig = OnnxSessionConfig(),
) -> LoadedModel:
    """Load a model package from a path or a model URI, verifying every file's digest.

    ``model`` is a package directory, ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
    ``models:/<name>/<stage>``, ``models:/<name>/latest`` or ``models:/<name>@<alias>``.
    ``runtime='auto'`` runs the ONNX model when the package has one that passed parity,
    and the native flavor otherwise. Flavors stored as pickles (sklearn, pytorch, python)
    run code when loaded natively and are refused unless ``trust=True``.
    """
    if not str(model).startswith(MODEL_URI_PREFIXES):
        return load_package(model, trust=trust, runtime=runtime, session=session)
    return load_package(resolve_model(str(model)).path, trust=trust, runtime=runtime, session=session)


@dataclass(frozen=True)
class ModelSource:
    """A model URI resolved to a verified package, and the version its labels carry."""

    uri: str
    path: Path
    manifest: Manifest
    version: str | None
    registered_name: str | None = None

    @classmethod
    def resolve(cls, model_uri: str) -> ModelSource:
        path, name, version = resolve_registered(model_uri)  # registry name and version, for models:/ URIs
        reader = PackageReader.open(Path(path))  # every digest checked before anything is copied
        return cls(model_uri, Path(path), reader.manifest, version, name)

    def default_tag(self) -> str:
        """``quayside/<name>:<version or digest>``: one tag per package content."""
        served = self.registered_name or self.manifest.name
        name = re.sub(r"[^a-z0-9._-]+", "-", served.lower()).strip(".-_") or "model"
        return f"quayside/{name}:{self.version or self.manifest.digest()[:12]}"
