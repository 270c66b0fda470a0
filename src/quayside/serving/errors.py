"""How the model server answers a failed request, on the fast path and through FastAPI alike.

A :class:`~quayside.errors.QuaysideError` is answered with the status its class
declares, in the body its route's protocol expects (:func:`error_body`); an exception
Quayside did not raise on purpose is a bug: its traceback is logged under the request
id, and the body names that id and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Scope

from quayside.errors import QuaysideError
from quayside.serving.middleware import request_id_of
from quayside.serving.protocols.codec import dumps

logger = logging.getLogger("quayside.serving")

JSON = "application/json"

MLFLOW_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    422: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}
"""The MLflow ``error_code`` (its ``databricks_pb2.ErrorCode`` name) for a status on ``/invocations``.

MLflow's scoring server answers a body it cannot parse or that fails its schema with
``BAD_REQUEST``; the 413, 415 and 422 Quayside answers there are the same kind of refusal."""


def error_body(path: str, status: int, code: str, message: str) -> dict[str, Any]:
    """The error body for a request to ``path``, in the shape that route's clients read.

    - ``/v2/...``: the Open Inference Protocol's ``{"error": "<message>"}`` (what Triton answers,
      and what ``tritonclient.http`` reads), with Quayside's ``code`` beside it;
    - ``/invocations``: MLflow's scoring server's ``{"error_code": ..., "message": ...}``, with
      Quayside's ``code`` beside it;
    - every other route: Quayside's ``{"error": {"code", "message"}}``.
    """
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": message, "code": code}
    if path == "/invocations":
        mlflow_code = MLFLOW_ERROR_CODES.get(status, "INTERNAL_ERROR")
        return {"error_code": mlflow_code, "message": message, "code": code}
    return {"error": {"code": code, "message": message}}


def error_response(error: QuaysideError, path: str) -> Response:
    """The response for ``error`` on a request to ``path``: the status its class declares, and its
    code and message in the route's shape (:func:`error_body`)."""
    body = error_body(path, error.http_status, error.code, error.message)
    return Response(dumps(body), status_code=error.http_status, media_type=JSON)


def json_error(
    path: str, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The same body for an error the framework raised (no route, a method not allowed)."""
    body = dumps(error_body(path, status, code, message))
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def unexpected_error_response(scope: Scope, error: BaseException) -> Response:
    """Log ``error`` with its traceback (a bug in Quayside) and answer a 500 that names the request id."""
    request_id = request_id_of(scope)
    logger.error("unexpected error in request %s (a bug in Quayside)", request_id, exc_info=error)
    message = f"internal error; the server log has the details under request id {request_id}"
    return error_response(QuaysideError(message), scope.get("path", ""))
