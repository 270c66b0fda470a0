"""Request bodies bounded while they stream, on every route of ``quayside server``.

JSON API routes may carry ``max_request_bytes``; the routes that stream an upload to disk
(run artifacts, MLflow's proxied artifacts, registry packages) ``max_artifact_bytes``. A
declared ``Content-Length`` over the limit is answered 413 before a byte is read; a body
without one (chunked) is counted as it arrives and answered 413 as soon as it passes the
limit, so no route ever holds more than its limit in memory. The answer is the standard
error body, or MLflow's on MLflow's routes.

This is plain ASGI, ahead of the framework, as serving's fast path reads its bodies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quayside.config import Settings
from quayside.errors import PayloadTooLargeError
from quayside.server.errors import error_response
from quayside.server.mlflow import ARTIFACTS_PREFIXES, MLFLOW_PREFIXES
from quayside.server.mlflow.errors import mlflow_error
from quayside.server.registry import REGISTRY_PREFIX
from quayside.server.tracking import TRACKING_PREFIX

# The routes whose handlers stream the body to disk: (method, full-match pattern of the path).
UPLOAD_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("PUT", re.compile(re.escape(TRACKING_PREFIX) + r"/runs/[^/]+/artifacts/file")),
    ("POST", re.compile(re.escape(REGISTRY_PREFIX) + r"/models/[^/]+/versions")),
    *(("PUT", re.compile(re.escape(prefix) + r"/artifacts/.+")) for prefix in ARTIFACTS_PREFIXES),
)
_MLFLOW_PATHS = MLFLOW_PREFIXES + ARTIFACTS_PREFIXES


@dataclass(frozen=True)
class Limit:
    """The most bytes a route's body may have, and the setting that says so (for the message)."""

    max_bytes: int
    setting: str


def is_upload(method: str, path: str) -> bool:
    return any(method == m and pattern.fullmatch(path) for m, pattern in UPLOAD_ROUTES)


class BodyLimits:
    """ASGI middleware: the request body of each route within its limit, or a 413."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.json = Limit(settings.max_request_bytes, "QUAYSIDE_MAX_REQUEST_BYTES")
        self.upload = Limit(settings.max_artifact_bytes, "QUAYSIDE_MAX_ARTIFACT_BYTES")

    def limit_for(self, method: str, path: str) -> Limit:
        return self.upload if is_upload(method, path) else self.json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit.max_bytes:
            error = PayloadTooLargeError(
                f"the request body is {declared} bytes; the limit for this route is "
                f"{limit.max_bytes} bytes ({limit.setting})"
            )
            await _render(scope, error)(scope, receive, send)
            return
        await _Guarded(self.app, scope, receive, send, limit).run()


class _Guarded:
    """One request whose body is counted as the app receives it."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: Limit) -> None:
        self.app, self.scope, self.upstream_receive, self.upstream_send = app, scope, receive, send
        self.limit = limit
        self.received = 0
        self.refused = False
        self.response_started = False

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            if not self.refused:
                raise
            # The app failed on the body it was refused; the client already has its 413.

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.upstream_receive()
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received <= self.limit.max_bytes:
            return message
        self.refused = True
        if not self.response_started:
            error = PayloadTooLargeError(
                f"the request body is over the limit of {self.limit.max_bytes} bytes for this route "
                f"({self.limit.setting})"
            )
            await _render(self.scope, error)(self.scope, self.upstream_receive, self.upstream_send)
        # To the app, the client is gone: it stops reading, and its own answer is dropped below.
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self.upstream_send(message)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _render(scope: Scope, error: PayloadTooLargeError) -> JSONResponse:
    if scope["path"].startswith(_MLFLOW_PATHS):
        return mlflow_error(error)
    return error_response(error.http_status, error.code, error.message)
