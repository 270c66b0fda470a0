"""A request id on every request to the Quayside server, echoed as ``X-Request-ID``.

The id is the caller's own ``X-Request-ID`` when it is a sane one, else a new one.
Error handlers name it in 5xx bodies and log lines, so an operator can find the
detail behind "the database is unavailable" from what a user pastes. Plain ASGI
(as the serving app's middleware is), so it costs no task and no thread per request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quayside.request_ids import REQUEST_ID_HEADER, incoming_request_id, new_request_id


def request_id_of(request: Request) -> str:
    """The id of the request being handled, or ``"-"`` outside :class:`RequestIdMiddleware`."""
    return request.scope.get("state", {}).get("request_id", "-")


class RequestIdMiddleware:
    """Give each HTTP request an id (``request.state.request_id``) and answer it as ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope["headers"]) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
