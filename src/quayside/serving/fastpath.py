"""The inference routes answered in plain ASGI, ahead of the framework.

``POST /v2/models/<this model>/infer`` and ``POST /invocations`` carry nearly
all of a server's traffic. Here they skip the framework's route matching,
dependency solving and response classes: the body is read with the size limit
applied as it arrives, handed to the model server, and the bytes it returns are
sent. A V2 request framed by the binary tensor data extension (it carries an
``Inference-Header-Content-Length`` header) takes the same way, and so does its
framed answer. Every other path, and these same routes as documented in ``/docs``, go
through FastAPI; both ways run the same :class:`ModelServer` handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quayside.errors import PayloadTooLargeError, QuaysideError
from quayside.hosts import HOST_HEADER, HostAllowList
from quayside.serving.auth import AUTHORIZATION, CHALLENGE, BearerToken
from quayside.serving.errors import JSON, error_response, unexpected_error_response
from quayside.serving.model_server import ModelServer
from quayside.serving.protocols.binary import HEADER_LENGTH, OCTET_STREAM, Framed

_JSON_HEADER = (b"content-type", JSON.encode())
_OCTET_STREAM_HEADER = (b"content-type", OCTET_STREAM.encode())
_HEADER_LENGTH = HEADER_LENGTH.encode()


@dataclass(frozen=True)
class RouteLabel:
    """What the metrics middleware reads off ``scope["route"]``: the route's path template."""

    path: str


V2_INFER = RouteLabel("/v2/models/{model_name}/infer")
INVOCATIONS = RouteLabel("/invocations")


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def read_limited_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, or :class:`PayloadTooLargeError` as soon as it passes ``limit``."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is {int(declared)} bytes; the limit is {limit} bytes")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body  # the common case: the whole body arrived in one piece
    chunks, size = [body], len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class FastPath:
    """Routes the two inference endpoints straight to the model server; all else to ``app``.

    Every request passes the Host allow-list and, with a token, the bearer check first
    (:mod:`quayside.hosts`, :mod:`quayside.serving.auth`), whichever way it is answered.
    """

    def __init__(self, app: ASGIApp, server: ModelServer) -> None:
        self.app = app
        self.server = server
        self.v2_path = f"/v2/models/{server.runtime.name}/infer"
        self.limit = server.options.max_body_bytes
        options = server.options
        self.hosts = HostAllowList.for_server(options.host, options.allowed_hosts)
        self.token = BearerToken(options.auth_token, server.runtime.name) if options.auth_token else None
        self.gated = self.token is not None or not self.hosts.any_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.gated and scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == self.v2_path:
                scope["route"] = V2_INFER
                await self._answer(scope, receive, send, self._v2)
                return
            if path == INVOCATIONS.path:
                scope["route"] = INVOCATIONS
                await self._answer(scope, receive, send, self._invocations)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer to a request with a Host not allowed or without the token; None to go on."""
        host = authorization = None
        for key, value in scope["headers"]:
            if key == HOST_HEADER:
                host = value
            elif key == AUTHORIZATION:
                authorization = value
        if not self.hosts.allows(host):
            assert host is not None
            return error_response(self.hosts.refusal(host))
        token = self.token
        if token is None or scope["path"] in token.open_paths or token.accepts(authorization):
            return None
        response = error_response(token.refusal(authorization))
        response.headers[CHALLENGE[0]] = CHALLENGE[1]
        return response

    async def _v2(self, scope: Scope, body: bytes) -> bytes | Framed:
        header_length = _header(scope, _HEADER_LENGTH)
        if header_length is None:
            return await self.server.infer_v2(self.server.runtime.name, body)
        return await self.server.infer_v2(self.server.runtime.name, body, header_length.decode("latin-1"))

    async def _invocations(self, scope: Scope, body: bytes) -> bytes:
        content_type = _header(scope, b"content-type") or b""
        return await self.server.invocations(body, content_type.decode("latin-1"))

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handler: Callable[[Scope, bytes], Awaitable[bytes | Framed]],
    ) -> None:
        runner = self.server.runner
        runner.receiving += 1  # a batch about to form waits for requests still being received
        try:
            try:
                body = await read_limited_body(scope, receive, self.limit)
            finally:
                runner.receiving -= 1
            response = await handler(scope, body)
        except ClientGone:
            return
        except QuaysideError as e:
            await error_response(e)(scope, receive, send)
            return
        except Exception as e:
            await unexpected_error_response(scope, e)(scope, receive, send)
            return
        if isinstance(response, Framed):
            headers = [_OCTET_STREAM_HEADER, (_HEADER_LENGTH, str(response.header_length).encode())]
            response = response.body
        else:
            headers = [_JSON_HEADER]
        headers.append((b"content-length", str(len(response)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": response})
