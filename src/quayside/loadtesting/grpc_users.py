"""A Locust user that speaks gRPC: each user calls ``ModelInfer`` with ready bytes over a channel of its own.

Like Locust's HTTP users, every call is reported to ``environment.events.request`` (its
latency, and a failure as ``gRPC <STATUS>``), so the runner, the report, the SLO verdict
and the registry's judgement are the same whichever transport carried the load. The
method is called without serialisers: the bodies are serialised requests already
(:mod:`~quayside.loadtesting.grpc_bodies`), and answers are counted as bytes, not parsed.

grpc runs in gevent mode (:func:`init_gevent`), switched on after Locust has patched
the standard library and before the first channel; Locust and grpc are imported when a
class is made, never when this module is imported.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from quayside.errors import UnavailableError
from quayside.loadtesting.grpc_bodies import SERVER_READY
from quayside.loadtesting.payloads import Payloads
from quayside.loadtesting.users import REQUEST_TIMEOUT_S, import_locust

READY_TIMEOUT_S = 10.0
_gevent_mode = False


class GrpcFailure(Exception):
    """A failed call, named as the report groups it: ``gRPC UNAVAILABLE``, ``gRPC INVALID_ARGUMENT``."""


def init_gevent() -> None:
    """Put grpc in gevent mode, once per process (before any channel exists, as grpc requires)."""
    global _gevent_mode
    if _gevent_mode:
        return
    import grpc.experimental.gevent

    grpc.experimental.gevent.init_gevent()
    _gevent_mode = True


def check_reachable(target: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Ask ``target`` for ``ServerReady`` once, so that a wrong address fails before any load, in one line."""
    import grpc

    from quayside.oip import grpc_predict_v2_pb2 as pb

    with grpc.insecure_channel(target) as channel:
        ready = channel.unary_unary(
            SERVER_READY,
            request_serializer=pb.ServerReadyRequest.SerializeToString,
            response_deserializer=pb.ServerReadyResponse.FromString,
        )
        try:
            answer = ready(pb.ServerReadyRequest(), timeout=timeout_s)
        except grpc.RpcError as e:
            raise UnavailableError(
                f"no gRPC inference server answers at {target} ({e.code().name}); "
                "give the server's gRPC address as HOST:PORT"
            ) from None
    if not answer.ready:
        raise UnavailableError(f"the gRPC server at {target} says it is not ready")


def grpc_user_class(payloads: Payloads, target: str, *, name: str = "SignatureGrpcUser") -> type:
    """A Locust ``User`` that calls the payloads' method on ``target`` (HOST:PORT) round-robin, without pauses."""
    locust = import_locust()
    import grpc

    init_gevent()
    bodies = itertools.cycle(payloads.bodies)
    method = payloads.path

    def on_start(self: Any) -> None:
        # Channels with equal arguments share one connection through grpc's global subchannel
        # pool; a local pool gives each simulated user a connection of its own, as HTTP users have.
        self.channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.call = self.channel.unary_unary(method)

    def on_stop(self: Any) -> None:
        self.channel.close()

    def infer(self: Any) -> None:
        started = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            length = len(self.call(next(bodies), timeout=REQUEST_TIMEOUT_S))
        except grpc.RpcError as e:
            exception = GrpcFailure(f"gRPC {e.code().name}")
        self.environment.events.request.fire(
            request_type="gRPC",
            name=method,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=length,
            response=None,
            context={},
            exception=exception,
        )

    attributes = {
        "host": target,
        "wait_time": locust.constant(0),
        "tasks": [infer],
        "on_start": on_start,
        "on_stop": on_stop,
        "__module__": __name__,
    }
    return type(name, (locust.User,), attributes)
