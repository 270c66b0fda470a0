"""``create_app(settings)``: the Quayside server, one router per component."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from quayside import __version__, scratch
from quayside.artifacts import check_artifact_store, open_artifact_store
from quayside.config import Settings
from quayside.registry.artifacts import STAGING_PREFIX
from quayside.server.context import RequestIdMiddleware
from quayside.server.deps import AppState, install_state
from quayside.server.errors import install_error_handlers
from quayside.server.hardening import BrowserHardening, allowed_hosts
from quayside.server.health import router as health_router
from quayside.server.limits import BodyLimits
from quayside.server.mlflow import install_mlflow
from quayside.server.permissions import RouteGuard, authorize
from quayside.server.registry import REGISTRY_PREFIX
from quayside.server.registry import router as registry_router
from quayside.server.tracking import TRACKING_PREFIX
from quayside.server.tracking import router as tracking_router
from quayside.server.ui import install_ui
from quayside.serving.docs import install_docs
from quayside.tracking.artifacts import TEMP_PREFIX as UPLOAD_PREFIX


def create_app(settings: Settings) -> FastAPI:
    """The REST API over the store and artifact root that ``settings`` name.

    The artifact root is opened and proven usable first (an unknown scheme, an unreachable
    bucket or a directory it cannot write is refused with one :class:`~quayside.errors.QuaysideError`
    line), then the database is opened (and migrated), so a server that starts is a server
    that can write.
    """
    # What uploads cut short by a crash left in the local work folder (the root itself when local;
    # an S3 store keeps its own staging, cleared by a bucket lifecycle rule); a write another
    # live server has in progress stays. Swept before the root's check writes its probe there,
    # so that a root's first sweep is still the one that finds an older release's leftovers.
    scratch.sweep(settings.artifact_dir, legacy_prefixes=(UPLOAD_PREFIX, STAGING_PREFIX))
    check_artifact_store(open_artifact_store(settings.artifact_location))
    # Every route's permission rule (server/permissions.py) is checked before its handler runs.
    app = FastAPI(
        title="Quayside",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(authorize)],
    )
    install_docs(app)  # the same escaped Swagger UI page as a model server's
    install_state(app, AppState.from_settings(settings))
    install_error_handlers(app)
    app.add_middleware(RouteGuard, router=app.router)  # the same check for mounts and plain routes
    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(BrowserHardening, hosts=allowed_hosts(settings))
    app.add_middleware(RequestIdMiddleware)  # outermost: a refused body gets an id too
    app.include_router(tracking_router, prefix=TRACKING_PREFIX)
    app.include_router(registry_router, prefix=REGISTRY_PREFIX)
    install_mlflow(app)
    app.include_router(health_router)
    install_ui(app)
    return app
