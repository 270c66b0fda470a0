"""How the model server answers a failed request, on the fast path and through FastAPI alike.

A :class:`~quayside.errors.QuaysideError` is answered with the status its class
declares and ``{"error": {"code", "message"}}``; an exception Quayside did not raise on
purpose is a bug: its traceback is logged under the request id, and the body names
that id and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import Scope

from quayside.errors import QuaysideError
from quayside.serving.middleware import request_id_of
from quayside.serving.protocols.codec import dumps

logger = logging.getLogger("quayside.serving")

JSON = "application/json"


def error_response(error: QuaysideError) -> Response:
    """The response for ``error``: the status its class declares, and its code and message."""
    return Response(dumps(error.to_dict()), status_code=error.http_status, media_type=JSON)


def json_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The same body for an error the framework raised (no route, a method not allowed)."""
    body = dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def unexpected_error_response(scope: Scope, error: BaseException) -> Response:
    """Log ``error`` with its traceback (a bug in Quayside) and answer a 500 that names the request id."""
    request_id = request_id_of(scope)
    logger.error("unexpected error in request %s (a bug in Quayside)", request_id, exc_info=error)
    message = f"internal error; the server log has the details under request id {request_id}"
    return error_response(QuaysideError(message))
