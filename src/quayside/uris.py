"""Model URIs wherever a model is taken: tracking and the registry composed for ``load_model``, the CLI and scripts.

The registry resolves URIs (:mod:`quayside.registry.uris`) but may not import tracking,
so this module hands it the lookup for ``runs:/<run_id>/<path>``: the run's artifact
directory in the local store, or a download from a ``quayside server``. Plain paths
never touch a database, so ``quayside.load_model("dir")`` stays as light as before.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.config import Settings, load_settings
from quayside.errors import NotFoundError
from quayside.packager.package import LoadedModel, OnnxSessionConfig, Runtime
from quayside.packager.package import load_model as load_package

if TYPE_CHECKING:
    from quayside.registry.client import RegistryClient
    from quayside.registry.entities import ModelVersion
    from quayside.registry.uris import ResolvedModel, RunArtifactPath

# Importing this module (``import quayside`` does) loads neither the registry nor tracking:
# the serving image imports quayside and must not pull them in.


MODEL_URI_PREFIXES = ("models:/", "runs:/")


def run_artifact_resolver(settings: Settings) -> RunArtifactPath:
    """``(run_id, path) -> local directory`` of a package logged in a run, from the tracking settings."""

    def run_artifact_path(run_id: str, path: str) -> Path:
        from quayside.tracking.client import backend_for
        from quayside.tracking.local import LocalBackend

        backend = backend_for(settings)
        backend.get_run(run_id)
        if isinstance(backend, LocalBackend):
            directory = backend.artifacts.resolve(run_id, path)
            if not directory.is_dir():
                raise NotFoundError(f"run '{run_id}' has no artifact directory '{path}'")
            return directory
        # A server's artifacts come down into a cache, replaced whole on each resolution.
        cache = settings.home / "cache" / "runs" / run_id
        staging = cache / f".download-{uuid.uuid4().hex}"
        downloaded = backend.download_artifacts(run_id, path, staging)
        target = cache / path.replace("/", "__")
        shutil.rmtree(target, ignore_errors=True)
        downloaded.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        return target

    return run_artifact_path


def resolve_model(model: str | Path, *, settings: Settings | None = None) -> ResolvedModel:
    """The local package directory of a path or model URI."""
    from quayside.registry.uris import is_model_uri, resolve_model_uri

    if not is_model_uri(str(model)):
        return resolve_model_uri(model)
    settings = settings or load_settings()
    if str(model).startswith("runs:/"):
        return resolve_model_uri(model, None, run_artifact_resolver(settings))
    return _client(settings).resolve(model)


def _client(settings: Settings | None) -> RegistryClient:
    return __getattr__("RegistryClient")(settings=settings)


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


def register_model(
    model: str | Path,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    allow_multiple_production: bool | None = None,
    actor: str | None = None,
    reason: str = "",
    settings: Settings | None = None,
) -> ModelVersion:
    """Register a package (a path or model URI, e.g. ``runs:/<run_id>/model``) as the next version of ``name``."""
    return _client(settings).register_model(
        model,
        name,
        model_description=description or None,
        tags=tags,
        allow_multiple_production=allow_multiple_production,
        actor=actor,
        reason=reason,
    )


def __getattr__(name: str) -> Any:
    makers = {"RegistryClient": _wired_registry_client, "Client": _wired_client}
    if name in makers:
        value = makers[name]()
        globals()[name] = value
        return value
    raise AttributeError(f"module 'quayside.uris' has no attribute '{name}'")


def _wired_client() -> type:
    """``quayside.Client``: tracking's client, with the registry of the same store or server beside it."""
    from quayside.tracking.client import Client as TrackingClient

    class Client(TrackingClient):
        """Experiments, runs, metrics, params, tags, artifacts and models, addressed by id; and the registry.

        ``Client()`` reads the ``QUAYSIDE_*`` settings; ``Client("http://host:5000")``
        talks to that server. ``client.registry`` is the :class:`RegistryClient` of the
        same server (or local store): ``client.registry.transition("churn", 3, "staging")``.
        """

        def __init__(self, tracking_uri: str | None = None, *, settings: Settings | None = None) -> None:
            super().__init__(tracking_uri, settings=settings)
            self._tracking_uri = tracking_uri
            self._registry: RegistryClient | None = None

        @property
        def registry(self) -> RegistryClient:
            if self._registry is None:
                self._registry = __getattr__("RegistryClient")(self._tracking_uri, settings=self.settings)
            return self._registry

    Client.__module__ = "quayside"
    Client.__qualname__ = "Client"
    return Client


def _wired_registry_client() -> type[RegistryClient]:
    """The registry's client with ``runs:/`` URIs wired to tracking, made on first use (see above)."""
    from quayside.registry.client import RegistryClient as Base

    class RegistryClient(Base):
        """Registered models and their versions, stages, aliases and audit history.

        ``RegistryClient()`` reads the ``QUAYSIDE_*`` settings; ``RegistryClient("http://host:5000")``
        talks to that server. Registering or resolving ``runs:/`` URIs goes through tracking.
        """

        def __init__(
            self,
            registry_uri: str | None = None,
            *,
            settings: Settings | None = None,
            run_artifact_path: RunArtifactPath | None = None,
        ) -> None:
            settings = settings or load_settings()
            super().__init__(
                registry_uri,
                settings=settings,
                run_artifact_path=run_artifact_path or run_artifact_resolver(settings),
            )

    RegistryClient.__module__ = "quayside"
    RegistryClient.__qualname__ = "RegistryClient"
    return RegistryClient
