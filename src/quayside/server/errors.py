"""The server's one error mapping: QuaysideError → its status and ``{"error": {"code", "message"}}``.

A request that fails validation (FastAPI's ``RequestValidationError``) is an
:class:`~quayside.errors.InvalidRequestError`: 400 ``invalid_request``, with a message
naming the field, as on the model server (that class's docstring says why 400, not 422).
Anything unclassified is logged with its traceback and answered as a plain 500
``internal`` without internals (it is a bug to fix, not a message for users).

A body says what the client can act on and nothing about the deployment. The error's
``detail`` (a database URL, the driver's text) goes to the log only, under the request
id that 5xx bodies name; an :class:`~quayside.errors.UnavailableError` carries
``Retry-After``. Messages built by layers that also serve local users may name a path
on this machine; :func:`public_error` replaces the server's own paths and database URL
in them before they leave (all three renderers use it: JSON, MLflow's shape, UI pages).
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from quayside.config import Settings
from quayside.db.engine import redact
from quayside.errors import AuthenticationError, InvalidRequestError, QuaysideError, UnavailableError
from quayside.request_ids import REQUEST_ID_HEADER
from quayside.server.auth import challenge
from quayside.server.context import request_id_of
from quayside.server.deps import settings_of
from quayside.server.ranges import UnsatisfiableRange

log = logging.getLogger("quayside.server")

SERVER_PATH, DATABASE, ARTIFACT_ROOT = "<server path>", "<database>", "<artifact root>"
# Scratch directories under the system's temporary directory (tempfile.mkdtemp(prefix="quayside-...")).
_SCRATCH_PREFIX = "quayside-"
# A private path matches as a whole component (it ends at a separator, a quote, a space or the
# end), and takes the rest of the path after it along.
_WHOLE_COMPONENT = r"(?=$|[/\\\s'\"),;:])"
_REST_OF_PATH = r"[^\s'\"]*"


@dataclass(frozen=True)
class PublicError:
    """What a response may carry of an error: its message, made safe, and headers."""

    message: str
    headers: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _private_patterns(
    url: str, artifact_dir: Path, home: Path, artifact_location: str = ""
) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(pattern, replacement) for what a body must not name: the database URL, the server's paths,
    the artifact root (``s3://bucket/prefix`` too).

    Built once per server (its settings do not change), not on every error it answers.
    """
    patterns = [(re.escape(text), DATABASE) for text in sorted({url, redact(url)}, key=len, reverse=True)]
    if artifact_location and len(artifact_location.strip("/")) > 1:
        patterns.append((re.escape(artifact_location) + _WHOLE_COMPONENT + _REST_OF_PATH, ARTIFACT_ROOT))
    paths = [artifact_dir, home]
    if url.startswith("sqlite:///"):
        paths.append(Path(url.removeprefix("sqlite:///")))
    variants = {str(v) for path in paths for v in (path, path.expanduser(), path.expanduser().resolve())}
    for variant in sorted(variants, key=len, reverse=True):
        if len(variant.strip("/")) > 1:
            patterns.append((re.escape(variant) + _WHOLE_COMPONENT + _REST_OF_PATH, SERVER_PATH))
    scratch = str(Path(tempfile.gettempdir()) / _SCRATCH_PREFIX)
    patterns.append((re.escape(scratch) + _REST_OF_PATH, SERVER_PATH))
    return tuple((re.compile(pattern), replacement) for pattern, replacement in patterns)


def scrub(message: str, settings: Settings) -> str:
    """``message`` with the server's database URL and its paths (and what follows them) replaced."""
    # A local root is among the paths already; an object store's root text is hidden as itself.
    location = "" if settings.artifact_root_is_local else settings.artifact_location
    for pattern, replacement in _private_patterns(
        settings.database_url, settings.artifact_dir, settings.home, location
    ):
        message = pattern.sub(replacement, message)
    return message


def public_error(request: Request | None, error: QuaysideError) -> PublicError:
    """What a body may say of ``error``; logs it under the request id (5xx always, others with detail).

    Without a request (a middleware that answers before routing) there is nothing to log it under:
    the message is answered as it is, which suits the limits' own messages, the only such callers.
    """
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, UnavailableError) else {}
    if isinstance(error, UnsatisfiableRange):
        headers["Content-Range"] = f"bytes */{error.size}"
    if isinstance(error, AuthenticationError) and request is not None:
        headers["WWW-Authenticate"] = challenge(request)
    if request is None:
        return PublicError(error.message, headers)
    request_id = request_id_of(request)
    where = f"request {request_id}: {request.method} {request.url.path}"
    if error.http_status >= 500:
        log.error("%s: %s: %s", where, error.code, error)
    elif error.detail:
        log.info("%s: %s: %s", where, error.code, error)
    settings = settings_of(request.app)
    message = scrub(error.message, settings) if settings is not None else error.message
    if error.http_status >= 500:
        message = f"{message} (request id {request_id})"
    return PublicError(message, headers)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where = {"body": "body", "query": "query parameter", "path": "path parameter", "header": "header"}[
            parts[0]
        ]
        return f"{where} '{'.'.join(parts[1:])}'" if len(parts) > 1 else where
    return ".".join(parts)


def describe_validation_error(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        message = str(item.get("msg", "is invalid"))
        problems.append(f"{_location(tuple(item.get('loc', ())))}: {message}")
    return "invalid request: " + "; ".join(problems)


async def _quayside_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QuaysideError)
    public = public_error(request, exc)
    return error_response(exc.http_status, exc.code, public.message, public.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = InvalidRequestError(describe_validation_error(exc))
    return error_response(error.http_status, error.code, error.message)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Answered outside the request-id middleware (Starlette's ServerErrorMiddleware), hence the header here.
    request_id = request_id_of(request)
    log.exception(
        "request %s: unhandled error on %s %s", request_id, request.method, request.url.path, exc_info=exc
    )
    return error_response(
        500,
        "internal",
        f"internal server error; the server log has the details under request id {request_id}",
        {REQUEST_ID_HEADER.decode(): request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QuaysideError, _quayside_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
