"""Per-request bookkeeping around every route: request id, metrics, one access-log line.

Written as plain ASGI (not Starlette's BaseHTTPMiddleware) because it sits on
the inference hot path: it costs a few microseconds, not a task per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quayside.request_ids import REQUEST_ID_HEADER, incoming_request_id, new_request_id
from quayside.serving.metrics import NO_MODEL, ServerMetrics

access_logger = logging.getLogger("quayside.access")


def request_id_of(scope: Scope) -> str:
    """The id of the request being handled (the caller's ``X-Request-ID`` or a new one)."""
    return scope.get("state", {}).get("request_id", "-")


MODEL_KEY = "quayside.model_labels"
"""Where a route puts the ``(model, version)`` labels of the model it served in the scope."""


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", "unmatched")


class RequestContext:
    """Tags each request with an id (echoed as ``X-Request-ID``), counts and times it, and logs it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, *, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # The labelled series of each (route, status, model labels) seen, so that a request does
        # not pay for prometheus_client's label lookup (a lock and a dictionary) twice.
        self._series: dict[tuple[str, int, tuple[str, str]], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(scope["headers"]) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status, time.perf_counter() - started)

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        route = _route_label(scope)
        model = scope.get(MODEL_KEY, NO_MODEL)
        series = self._series.get((route, status, model))
        if series is None:
            metrics = self.metrics
            series = (
                metrics.requests.labels(route, str(status), *model),
                metrics.latency.labels(route, *model),
            )
            self._series[(route, status, model)] = series
        series[0].inc()
        series[1].observe(seconds)
        if self.access_log:
            access_logger.info(_access_line(scope, request_id, status, seconds))


def _access_line(scope: Scope, request_id: str, status: int, seconds: float) -> str:
    client = scope.get("client")
    line: dict[str, Any] = {
        "ts": time.time(),
        "request_id": request_id,
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    return orjson.dumps(line).decode()
