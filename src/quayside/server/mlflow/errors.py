"""MLflow's error shape for the adapter: ``{"error_code", "message"}`` with MLflow's codes and statuses.

:func:`mlflow_error` maps a :class:`~quayside.errors.QuaysideError` along its MRO to
MLflow's code; :class:`MlflowRoute` answers every route's Quayside and validation errors
so; :data:`not_found_router` answers ``ENDPOINT_NOT_FOUND`` for an MLflow endpoint
Quayside does not serve (included last, after every resource's routes).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from quayside.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidStateError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PolicyError,
    QuaysideError,
    RangeNotSatisfiableError,
    UnavailableError,
    UsageError,
)
from quayside.server.errors import describe_validation_error, public_error

# (error class, MLflow error code, HTTP status); the first match along the MRO wins.
# MLflow's client retries 5xx answers for minutes, so only true server faults are 5xx: a move the
# promotion policy refuses is a conflict with the model's state (409, as Quayside answers it),
# not MLflow's INVALID_STATE, which MLflow serves as a 500.
_ERROR_CODES: tuple[tuple[type[QuaysideError], str, int], ...] = (
    (PolicyError, "RESOURCE_CONFLICT", 409),
    (AuthenticationError, "UNAUTHENTICATED", 401),
    (PermissionDeniedError, "PERMISSION_DENIED", 403),
    (NotFoundError, "RESOURCE_DOES_NOT_EXIST", 404),
    (AlreadyExistsError, "RESOURCE_ALREADY_EXISTS", 400),
    (InvalidStateError, "INVALID_PARAMETER_VALUE", 400),
    (PayloadTooLargeError, "INVALID_PARAMETER_VALUE", 413),
    (RangeNotSatisfiableError, "INVALID_PARAMETER_VALUE", 416),
    (UsageError, "INVALID_PARAMETER_VALUE", 400),
    (UnavailableError, "TEMPORARILY_UNAVAILABLE", 503),
)


def mlflow_error(error: QuaysideError, request: Request | None = None) -> JSONResponse:
    """A Quayside error as MLflow's error body and status (logged, made public as the server's handler does)."""
    public = public_error(request, error)
    for cls in type(error).__mro__:
        for known, code, status in _ERROR_CODES:
            if cls is known:
                return error_body(status, code, public.message, public.headers)
    if error.http_status < 500:
        return error_body(error.http_status, "BAD_REQUEST", public.message, public.headers)
    return error_body(500, "INTERNAL_ERROR", public.message, public.headers)


def error_body(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers)


class MlflowRoute(APIRoute):
    """A route whose Quayside and validation errors are answered in MLflow's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except QuaysideError as e:
                return mlflow_error(e, request)
            except RequestValidationError as e:
                return error_body(400, "INVALID_PARAMETER_VALUE", describe_validation_error(e))

        return route


not_found_router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)


@not_found_router.api_route(
    "/{endpoint:path}", methods=["GET", "POST", "PATCH", "DELETE"], include_in_schema=False
)
def not_implemented(endpoint: str, request: Request) -> JSONResponse:
    return error_body(
        404,
        "ENDPOINT_NOT_FOUND",
        f"{request.method} {request.url.path} is not part of the MLflow API that Quayside answers "
        "(experiments and their tags, runs, params, metrics, tags, batch logging, dataset inputs, "
        "deleting and restoring runs and experiments, logged models and their search, artifacts, "
        "and the model registry: registered models and model versions)",
    )
