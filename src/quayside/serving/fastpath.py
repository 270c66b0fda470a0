"""The inference routes answered in plain ASGI, ahead of the framework.

``POST /v2/models/<a served model>[/versions/<its version>]/infer`` and ``POST /invocations``
carry nearly all of a server's traffic. Here they skip the framework's route matching,
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
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quayside.errors import PayloadTooLargeError, QuaysideError
from quayside.hosts import HOST_HEADER, HostAllowList
from quayside.serving.auth import AUTHORIZATION, CHALLENGE, BearerToken
from quayside.serving.errors import JSON, error_response, unexpected_error_response
from quayside.serving.middleware import MODEL_KEY
from quayside.serving.model_server import ModelServer
from quayside.serving.protocols.binary import HEADER_LENGTH, OCTET_STREAM, Framed
from quayside.serving.served_model import ServedModel

_JSON_HEADER = (b"content-type", JSON.encode())
_OCTET_STREAM_HEADER = (b"content-type", OCTET_STREAM.encode())
_HEADER_LENGTH = HEADER_LENGTH.encode()


@dataclass(frozen=True)
class RouteLabel:
    """What the metrics middleware reads off ``scope["route"]``: the route's path template."""

    path: str


V2_INFER = RouteLabel("/v2/models/{model_name}/infer")
V2_VERSION_INFER = RouteLabel("/v2/models/{model_name}/versions/{model_version}/infer")
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
    """Routes the inference endpoints straight to the served model; all else to ``app``.

    Every request passes the Host allow-list and, with a token, the bearer check first
    (:mod:`quayside.hosts`, :mod:`quayside.serving.auth`), whichever way it is answered.
    """

    def __init__(self, app: ASGIApp, server: ModelServer) -> None:
        self.app = app
        self.server = server
        self.infer_paths = server.infer_paths  # the server's own table: loads and unloads show at once
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
            model = self.infer_paths.get(path)
            if model is not None:
                scope["route"] = V2_INFER if path == model.infer_path else V2_VERSION_INFER
                scope[MODEL_KEY] = model.labels
                await self._answer(scope, receive, send, model, model_v2)
                return
            if path == INVOCATIONS.path:
                scope["route"] = INVOCATIONS
                try:
                    model = await self.server.invocations_model(_model_parameter(scope))
                except QuaysideError as e:
                    await error_response(e, path)(scope, receive, send)
                    return
                scope[MODEL_KEY] = model.labels
                await self._answer(scope, receive, send, model, model_invocations)
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
            return error_response(self.hosts.refusal(host), scope["path"])
        token = self.token
        if token is None or self._open(scope["path"]) or token.accepts(authorization):
            return None
        response = error_response(token.refusal(authorization), scope["path"])
        response.headers[CHALLENGE[0]] = CHALLENGE[1]
        return response

    def _open(self, path: str) -> bool:
        """Whether ``path`` is answered without the token: health, metrics, a served model's readiness."""
        assert self.token is not None
        if path in self.token.open_paths:
            return True
        if not (path.startswith("/v2/models/") and path.endswith("/ready")):
            return False
        name = path[len("/v2/models/") : -len("/ready")].split("/versions/")[0]
        return self.server.knows(name)  # an unknown name needs the token: its 404 lists the models

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        model: ServedModel,
        handler: Callable[[ServedModel, Scope, bytes], Awaitable[bytes | Framed]],
    ) -> None:
        runner = model.runner
        runner.receiving += 1  # a batch about to form waits for requests still being received
        try:
            try:
                body = await read_limited_body(scope, receive, self.limit)
            finally:
                runner.receiving -= 1
            if model.retired:
                model = await model.answering()
            response = await handler(model, scope, body)
        except ClientGone:
            return
        except QuaysideError as e:
            await error_response(e, scope["path"])(scope, receive, send)
            return
        except Exception as e:
            await unexpected_error_response(scope, e)(scope, receive, send)
            return
        if isinstance(response, Framed):
            headers = [_OCTET_STREAM_HEADER, (_HEADER_LENGTH, str(response.header_length).encode())]
            response = response.body
        else:
            headers = [_JSON_HEADER]
        headers += model.header_pairs
        headers.append((b"content-length", str(len(response)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": response})


async def model_v2(model: ServedModel, scope: Scope, body: bytes) -> bytes | Framed:
    """A V2 infer request on the fast path: the model is the one its path names."""
    header_length = _header(scope, _HEADER_LENGTH)
    if header_length is None:
        return await model.infer_v2(body)
    return await model.infer_v2(body, header_length.decode("latin-1"))


async def model_invocations(model: ServedModel, scope: Scope, body: bytes) -> bytes:
    content_type = _header(scope, b"content-type") or b""
    return await model.invocations(body, content_type.decode("latin-1"))


def _model_parameter(scope: Scope) -> str | None:
    """The ``?model=NAME`` of an ``/invocations`` request, if it has one."""
    query = scope.get("query_string", b"")
    if not query:
        return None
    names = parse_qs(query.decode("latin-1")).get("model")
    return names[-1] if names else None
