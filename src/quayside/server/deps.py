"""The server's typed state, built once in ``create_app``, and every FastAPI dependency over it.

:class:`AppState` holds what a request handler may use: the settings and the stores
(tracking with its artifacts, the registry with its packages, the MLflow adapter's
logged models and dataset inputs), all over one database. ``create_app`` builds it
with :meth:`AppState.from_settings` and :func:`install_state` puts it on the app; the
REST routers, the MLflow adapter and the UI's pages all take their stores from the
dependencies here (``backend: Backend``, ``registry: Registry`` ...), never from
``request.app.state`` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.applications import Starlette

from quayside.config import Settings
from quayside.registry.store import RegistryStore
from quayside.tracking.mlflow_datasets import MlflowDatasetStore
from quayside.tracking.mlflow_models import MlflowModelStore
from quayside.tracking.store import TrackingStore

_STATE_KEY = "quayside"


@dataclass(frozen=True)
class AppState:
    """Everything a Quayside server's handlers share; one per app, never changed after start."""

    settings: Settings
    tracking: TrackingStore
    """Tracking metadata and the runs' artifacts."""
    registry: RegistryStore
    """Registered models, their versions, stages, aliases, audit log and packages."""
    mlflow_models: MlflowModelStore
    """Models the MLflow client logs (MLflow 3's ``LoggedModel``), in the tracking database."""
    mlflow_datasets: MlflowDatasetStore
    """Datasets the MLflow client records as run inputs, in the tracking database."""

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        """The stores ``settings`` name; the tracking database is opened (and migrated) here."""
        tracking = TrackingStore.from_settings(settings)
        return cls(
            settings=settings,
            tracking=tracking,
            registry=RegistryStore.from_settings(settings),
            mlflow_models=MlflowModelStore(tracking.sessions),
            mlflow_datasets=MlflowDatasetStore(tracking.sessions),
        )


def install_state(app: Starlette, state: AppState) -> None:
    setattr(app.state, _STATE_KEY, state)


def app_state(app: Starlette) -> AppState:
    """The state :func:`install_state` put on ``app`` (for tests and tools that hold the app itself)."""
    return getattr(app.state, _STATE_KEY)


def settings_of(app: Starlette) -> Settings | None:
    """The app's settings, or ``None`` for an app without Quayside's state (a bare test app)."""
    state = getattr(app.state, _STATE_KEY, None)
    return state.settings if isinstance(state, AppState) else None


# --- dependencies -------------------------------------------------------------------------------


def get_state(request: Request) -> AppState:
    return app_state(request.app)


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


def get_backend(request: Request) -> TrackingStore:
    return get_state(request).tracking


def get_registry(request: Request) -> RegistryStore:
    return get_state(request).registry


def get_mlflow_models(request: Request) -> MlflowModelStore:
    return get_state(request).mlflow_models


def get_mlflow_datasets(request: Request) -> MlflowDatasetStore:
    return get_state(request).mlflow_datasets


ServerSettings = Annotated[Settings, Depends(get_settings)]
Backend = Annotated[TrackingStore, Depends(get_backend)]
Registry = Annotated[RegistryStore, Depends(get_registry)]
MlflowModels = Annotated[MlflowModelStore, Depends(get_mlflow_models)]
MlflowDatasets = Annotated[MlflowDatasetStore, Depends(get_mlflow_datasets)]
