"""The server's one error mapping: QuaysideError → its status and ``{"error": {"code", "message"}}``.

Request validation failures become 422 ``invalid_request`` with a message naming the
field; anything unclassified is logged with its traceback and answered as a plain
500 ``internal`` without internals (it is a bug to fix, not a message for users).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from quayside.errors import QuaysideError

log = logging.getLogger("quayside.server")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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


async def _quayside_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QuaysideError)
    if exc.http_status >= 500:
        log.error("%s: %s", exc.code, exc.message)
    return error_response(exc.http_status, exc.code, exc.message)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", describe_validation_error(exc))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QuaysideError, _quayside_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
