"""``Client`` and ``RegistryClient``: tracking and the registry of one store or server, wired together.

The registry may not import tracking (it refers to runs by id), so the clients users
import are composed here: the registry's client resolves ``runs:/`` URIs through
tracking, and tracking's client carries the registry of the same store as ``.registry``.
``quayside`` re-exports both (and :func:`register_model`) on first use, so ``import
quayside`` loads neither component.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose.models import run_artifact_resolver
from quayside.config import Settings, load_settings
from quayside.registry.client import RegistryClient as _RegistryClient
from quayside.tracking.client import Client as _TrackingClient

if TYPE_CHECKING:
    from quayside.registry.entities import ModelVersion
    from quayside.registry.uris import RunArtifactPath


class RegistryClient(_RegistryClient):
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


class Client(_TrackingClient):
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
        """The registry of the same server or local store, made on first use."""
        if self._registry is None:
            self._registry = RegistryClient(self._tracking_uri, settings=self.settings)
        return self._registry


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
    return RegistryClient(settings=settings).register_model(
        model,
        name,
        model_description=description or None,
        tags=tags,
        allow_multiple_production=allow_multiple_production,
        actor=actor,
        reason=reason,
    )
