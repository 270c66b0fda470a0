"""The UI's templates and their filters, and the route class that turns errors into HTML pages.

A page that fails answers an HTML page with the same status and message the REST API
would give (404 for an unknown run, 400 for a bad query), never a JSON body or a 500.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from quayside import __version__
from quayside.errors import AuthenticationError, InvalidRequestError, QuaysideError
from quayside.server.errors import describe_validation_error, public_error
from quayside.server.sessions import csrf_token, current_session

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# Every template is HTML and every value in it escaped; a page marks nothing |safe.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
)


def when(ms: int | float | None) -> str:
    """Milliseconds since the epoch as a UTC date and time (``-`` when unknown)."""
    if ms is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(start_ms: int | None, end_ms: int | None) -> str:
    """How long a run took, or has been running (``… so far``)."""
    if start_ms is None:
        return "-"
    running = end_ms is None
    seconds = max(((end_ms if end_ms is not None else time.time() * 1000) - start_ms) / 1000, 0.0)
    if seconds < 60:
        text = f"{seconds:.1f} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min {int(seconds % 60)} s"
    else:
        text = f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{text} so far" if running else text


def number(value: Any) -> str:
    """A metric value, short: six significant digits, NaN and infinities by name."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:.6g}"
    return str(value)


def size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


templates.env.filters.update(when=when, duration=duration, number=number, size=size)
templates.env.globals.update(version=__version__)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page from ``template`` with ``context``, and the logged-in user and CSRF token, if any."""
    session = current_session(request)
    context.setdefault("session_user", session.user if session else None)
    context.setdefault("csrf_token", csrf_token(request) if session else None)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def login_redirect(request: Request) -> Response:
    """To the login page, coming back to this page (its path and query) after logging in."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': here})}", status_code=303)


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    return render(request, "error.html", status_code=status, status=status, code=code, message=message)


class PageRoute(APIRoute):
    """A route whose Quayside errors and invalid query parameters become HTML error pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except AuthenticationError:
                if request.method in ("GET", "HEAD"):
                    return login_redirect(request)  # only raised with auth on: no login page otherwise
                raise
            except QuaysideError as e:
                public = public_error(request, e)
                response = error_page(request, e.http_status, e.code, public.message)
                response.headers.update(public.headers)
                return response
            except RequestValidationError as e:
                invalid = InvalidRequestError(describe_validation_error(e))
                return error_page(request, invalid.http_status, invalid.code, invalid.message)

        return page
