"""A Locust user class generated from request payloads: each user posts ready bodies in a closed loop.

Locust (and with it gevent's monkey-patching) is imported when a class is made,
never when this module is imported.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from quayside.errors import MissingExtraError
from quayside.loadtesting.payloads import Payloads

REQUEST_TIMEOUT_S = 30.0


def failure_type(status_code: int, body: str, error: BaseException | None = None) -> str:
    """How a failed request is grouped in the report: ``HTTP 422 signature_error``, or the exception's type."""
    if error is not None and not status_code:
        return type(error).__name__
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    return f"HTTP {status_code} {_error_code(document)}".rstrip()


def _error_code(document: Any) -> str:
    """The error code of any of the bodies Quayside answers with: V2 (``{"error": message, "code"}``),
    ``/invocations`` (MLflow's ``error_code`` with ``code`` beside it) and the server's nested one."""
    if not isinstance(document, dict):
        return ""
    error = document.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or "")
    return str(document.get("code") or "")


def import_locust() -> Any:
    try:
        import locust
    except ImportError as e:
        raise MissingExtraError("loadtest", "load tests") from e
    return locust


def user_class(payloads: Payloads, host: str, *, name: str = "SignatureUser") -> type:
    """A ``FastHttpUser`` subclass that sends the payloads' bodies round-robin, without pauses."""
    locust = import_locust()
    from locust.contrib.fasthttp import FastHttpUser

    bodies = itertools.cycle(payloads.bodies)
    headers = {"Content-Type": payloads.content_type}

    def infer(self: Any) -> None:
        with self.client.post(
            payloads.path, data=next(bodies), headers=headers, name=payloads.path, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(failure_type(response.status_code, response.text or "", response.error))

    attributes = {
        "host": host,
        "wait_time": locust.constant(0),
        "network_timeout": REQUEST_TIMEOUT_S,
        "connection_timeout": REQUEST_TIMEOUT_S,
        "tasks": [infer],
        "__module__": __name__,
    }
    return type(name, (FastHttpUser,), attributes)
