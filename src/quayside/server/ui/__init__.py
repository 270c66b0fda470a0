"""The web UI: server-rendered pages (Jinja2) over the tracking and registry stores, plus small static JS.

Pages read through the same backends as the REST API; every change a page makes
(a stage transition, an alias move) goes through the REST API with ``fetch``, so the
UI has no write path of its own. Templates and static files ship inside the package
and link to nothing outside it, so the UI works offline.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from quayside.server.ui.login import router as login_router
from quayside.server.ui.routes import router
from quayside.server.ui.templating import STATIC_DIR, error_page

STATIC_PREFIX = "/static"
# Paths read by programs (the REST APIs, assets) keep the JSON error body whatever they accept.
API_PREFIXES = ("/api/", "/ajax-api/", STATIC_PREFIX + "/")


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_ui(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their assets under ``/static``.

    A browser that asks for a page that is not there gets the UI's 404 page; API
    clients keep the JSON error body the server's handler gives.
    """
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(login_router)
    app.include_router(router)
    api_handler = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404 and _wants_html(request):
            return error_page(request, 404, "not_found", f"there is no page at {request.url.path}")
        return await api_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
