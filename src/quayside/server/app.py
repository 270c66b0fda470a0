"""``create_app(settings)``: the Quayside server, one router per component."""

from __future__ import annotations

from fastapi import FastAPI

from quayside import __version__
from quayside.config import Settings
from quayside.server import mlflow_compat, mlflow_models
from quayside.server.errors import install_error_handlers
from quayside.server.registry import REGISTRY_PREFIX
from quayside.server.registry import router as registry_router
from quayside.server.tracking import TRACKING_PREFIX
from quayside.server.tracking import router as tracking_router
from quayside.server.ui import install_ui
from quayside.tracking.local import LocalBackend
from quayside.tracking.mlflow_datasets import MlflowDatasetStore
from quayside.tracking.mlflow_models import MlflowModelStore


def create_app(settings: Settings) -> FastAPI:
    """The REST API over the store and artifact root that ``settings`` name.

    The database is opened (and migrated) here, so a server that starts is a server
    that can write.
    """
    app = FastAPI(title="Quayside", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.tracking = LocalBackend.from_settings(settings)
    app.state.mlflow_models = MlflowModelStore(app.state.tracking.store.sessions)
    app.state.mlflow_datasets = MlflowDatasetStore(app.state.tracking.store.sessions)
    install_error_handlers(app)
    app.include_router(tracking_router, prefix=TRACKING_PREFIX)
    app.include_router(registry_router, prefix=REGISTRY_PREFIX)
    for prefix in mlflow_compat.MLFLOW_PREFIXES:
        # Before mlflow_compat.router, whose last route answers every endpoint it does not know.
        app.include_router(mlflow_models.router, prefix=prefix, include_in_schema=False)
        app.include_router(mlflow_compat.router, prefix=prefix, include_in_schema=False)
    for prefix in mlflow_compat.ARTIFACTS_PREFIXES:
        app.include_router(mlflow_compat.artifacts_router, prefix=prefix, include_in_schema=False)

    @app.get("/health", tags=["server"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    install_ui(app)
    return app
