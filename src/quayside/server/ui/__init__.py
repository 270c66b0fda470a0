"""The web UI: server-rendered pages (Jinja2) over the tracking and registry stores, plus small static JS.

Pages read through the same backends as the REST API; every change a page makes
(a stage transition, an alias move) goes through the REST API with ``fetch``, so the
UI has no write path of its own. Templates and static files ship inside the package
and link to nothing outside it, so the UI works offline.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from quayside.server.ui.routes import router
from quayside.server.ui.templating import STATIC_DIR

STATIC_PREFIX = "/static"


def install_ui(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their assets under ``/static``."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
