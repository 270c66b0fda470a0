"""Quayside errors as gRPC status codes: one table, keyed by the HTTP status each error class declares.

Every :class:`~quayside.errors.QuaysideError` class declares the HTTP status REST answers
with; gRPC answers the code that means the same to a client, with the same message.
A bad request is ``INVALID_ARGUMENT`` whatever part of it is wrong (KServe and Triton
answer a signature mismatch so too), a body over the limit ``RESOURCE_EXHAUSTED``, a
server that is not ready or is draining ``UNAVAILABLE`` (which clients retry elsewhere).
Only an error Quayside did not raise on purpose, or one of its own 500s, is ``INTERNAL``.
"""

from __future__ import annotations

import grpc

from quayside.errors import QuaysideError

STATUS_BY_HTTP_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,  # UsageError and its subclasses: malformed input, bad fields
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,  # InvalidStateError: e.g. loading a second model
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    416: grpc.StatusCode.OUT_OF_RANGE,
    422: grpc.StatusCode.INVALID_ARGUMENT,  # SignatureError: the inputs do not fit the model
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}
"""The gRPC code for each HTTP status the error tree declares (errors.py draws the tree)."""


def status_code(error: QuaysideError) -> grpc.StatusCode:
    """The gRPC status code a call that raised ``error`` ends with."""
    return STATUS_BY_HTTP_STATUS.get(error.http_status, grpc.StatusCode.INTERNAL)
