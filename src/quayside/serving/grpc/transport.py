"""The gRPC listener of one worker: a ``grpc.aio`` server on the event loop uvicorn runs.

:func:`with_grpc` wraps a model server's ASGI app so that the gRPC server starts
when the app's lifespan has started (the model is loaded and warm, the batcher
runs) and before uvicorn listens for HTTP, and stops before the app's lifespan
ends. Both transports then share the worker's one
:class:`~quayside.serving.model_server.ModelServer`.

Beside ``inference.GRPCInferenceService`` the server answers the standard
``grpc.health.v1.Health`` service (what Kubernetes' ``grpc`` probe asks): SERVING
once ready, NOT_SERVING from SIGTERM on.

On SIGTERM the gRPC server stops at once alongside uvicorn's HTTP drain: it takes
no new calls (clients see UNAVAILABLE and retry elsewhere) and in-flight ones get
the grace period to finish; the model server stops only after both. Several workers
(and a successor container, ``--reuse-port``) share the port with SO_REUSEPORT; a
single server binds it alone, so a second server on the same port fails to start
instead of silently taking half of the first one's calls.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from quayside.errors import QuaysideError, UsageError
from quayside.serving.health import SignalHandler
from quayside.serving.model_server import ModelServer
from quayside.serving.options import ServeOptions

logger = logging.getLogger("quayside.serving")

ASGIApp = Callable[..., Any]


def grpc_address(host: str, port: int) -> str:
    """``host:port`` as gRPC spells an address (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def shares_port(options: ServeOptions) -> bool:
    """Whether this server's processes bind the gRPC port with SO_REUSEPORT."""
    return options.workers > 1 or options.reuse_port


def check_port_free(options: ServeOptions) -> None:
    """Refuse to start (a :class:`UsageError` naming the flag) when the gRPC port is taken.

    Checked once before the workers start, by binding the port as the first worker will;
    with ``--reuse-port`` a server of the same user on it is expected (the one being
    replaced) and is no reason to refuse.
    """
    if not options.grpc_port or options.reuse_port:
        return
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((options.host, options.grpc_port))
        except OSError as e:
            raise _bind_error(options, e.errno) from None


def _bind_error(options: ServeOptions, code: int | None) -> UsageError:
    address = grpc_address(options.host, options.grpc_port)
    if code == errno.EADDRINUSE:
        why = "the port is in use"
    elif code == errno.EACCES:
        why = "permission denied"
    else:
        why = "the address cannot be bound"
    return UsageError(
        f"cannot listen for gRPC on {address}: {why}; choose another port with --grpc-port "
        "(GRPC_PORT in an image), or --grpc-port 0 to serve REST only"
    )


class GrpcTransport:
    """A ``grpc.aio`` server answering the inference and health services for one model server."""

    def __init__(self, server: ModelServer) -> None:
        # Imported here, before the server starts, so that the time it takes counts in the
        # startup the metrics report (quayside_startup_seconds), as the framework's does.
        import grpc  # noqa: F401
        import grpc_health.v1.health  # noqa: F401

        import quayside.serving.grpc.servicer  # noqa: F401

        self.server = server
        self.options = server.options
        self._grpc_server: Any = None
        self._health: Any = None
        self._stopping: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Bind the port and start answering; raises :class:`UsageError` if the port cannot be bound."""
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        from quayside.serving.grpc.servicer import SERVICE, InferenceServicer, add_to_server

        options = self.options
        grpc_server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", options.max_body_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 1 if shares_port(options) else 0),
            ]
        )
        add_to_server(InferenceServicer(self.server), grpc_server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, grpc_server)
        address = grpc_address(options.host, options.grpc_port)
        try:
            bound = grpc_server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            raise _bind_error(options, errno.EADDRINUSE)
        await grpc_server.start()
        self._grpc_server = grpc_server
        self._loop = asyncio.get_running_loop()
        serving = health_pb2.HealthCheckResponse.SERVING
        for service in (health.OVERALL_HEALTH, SERVICE):
            await self._health.set(service, serving)
        self._watch_signals()
        logger.info("gRPC (KServe Open Inference Protocol, %s) on %s", SERVICE, address)

    def begin_stop(self) -> None:
        """Stop taking calls now, and give the ones in flight the grace period (idempotent)."""
        if self._grpc_server is None or self._stopping is not None:
            return
        self._stopping = asyncio.ensure_future(self._stop())

    async def _stop(self) -> None:
        await self._health.enter_graceful_shutdown()
        await self._grpc_server.stop(self.options.grace_period_s or None)

    async def stop(self) -> None:
        """Stop (if SIGTERM has not begun it already) and wait until every call has ended."""
        self.begin_stop()
        if self._stopping is not None:
            await self._stopping

    def _watch_signals(self) -> None:
        # Like Health.watch_signals: wrap the handlers in place (uvicorn's, and the model
        # server's drain), so the gRPC server stops taking calls when HTTP does.
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._chain(signal.getsignal(sig)))

    def _chain(self, previous: SignalHandler) -> Callable[[int, FrameType | None], None]:
        loop = self._loop
        assert loop is not None

        def handler(sig: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.begin_stop)
            if callable(previous):
                previous(sig, frame)

        return handler


class WithGrpc:
    """An ASGI app that runs ``app`` and, for the span of its lifespan, a gRPC listener beside it."""

    def __init__(self, app: ASGIApp, transport: GrpcTransport) -> None:
        self.app = app
        self.transport = transport

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        transport = self.transport

        async def send_after_grpc(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await transport.start()
                except QuaysideError as e:
                    message = {"type": "lifespan.startup.failed", "message": f"error: {e.message}"}
            await send(message)

        async def receive_after_grpc() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await transport.stop()  # before the app's own shutdown stops the batcher
            return message

        await self.app(scope, receive_after_grpc, send_after_grpc)


def with_grpc(app: ASGIApp, options: ServeOptions) -> ASGIApp:
    """``app`` with the gRPC listener of ``options.grpc_port``; ``app`` itself when the port is 0."""
    if not options.grpc_port:
        return app
    return WithGrpc(app, GrpcTransport(model_server_of(app)))


def model_server_of(app: ASGIApp) -> ModelServer:
    """The :class:`ModelServer` behind the app :func:`~quayside.serving.app.create_app` built.

    Found by walking the middleware chain (each layer's ``app``), so that wrappers added
    around the routes later do not need telling.
    """
    layer: Any = app
    while layer is not None:
        for candidate in (
            getattr(layer, "server", None),
            getattr(getattr(layer, "state", None), "server", None),
        ):
            if isinstance(candidate, ModelServer):
                return candidate
        layer = getattr(layer, "app", None)
    raise QuaysideError("no model server behind the app (a bug in Quayside: create_app changed)")
