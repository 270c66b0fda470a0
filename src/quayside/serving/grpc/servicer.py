"""``inference.GRPCInferenceService``: KServe's gRPC methods answered by one worker's model server.

Each method parses with :mod:`.tensors`, calls the same
:class:`~quayside.serving.model_server.ModelServer` the REST routes call (model
checks, batcher, health), and renders; errors end the call with the status
:mod:`.status` maps the error's class to, and the message REST answers. Every call
is counted and timed in the server's metrics under its method's path as the
``route`` label, and under the HTTP status REST would have answered as the
``status`` label (so ``status="500"`` still means a bug, whichever transport); it
is written to the access log as REST requests are, with its gRPC code beside.

With ``--auth-token-file`` every method needs ``authorization: Bearer <token>``
metadata except the probes' (ServerLive, ServerReady, ModelReady and the
standard ``grpc.health.v1.Health``), as on REST. The Host allow-list does not
apply: it guards against DNS rebinding from browsers, which cannot speak gRPC.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson
from google.protobuf.message import DecodeError

from quayside.errors import (
    InvalidRequestError,
    MalformedInputError,
    PayloadTooLargeError,
    QuaysideError,
    UnavailableError,
)
from quayside.oip import grpc_predict_v2_pb2 as pb
from quayside.request_ids import REQUEST_ID_HEADER, incoming_request_id, new_request_id
from quayside.serving.auth import AUTHORIZATION, BearerToken
from quayside.serving.grpc import tensors
from quayside.serving.grpc.status import status_code
from quayside.serving.metrics import NO_MODEL
from quayside.serving.model_server import ModelServer
from quayside.serving.protocols import v2
from quayside.version import __version__

logger = logging.getLogger("quayside.serving")
access_logger = logging.getLogger("quayside.access")

_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
SERVICE = _SERVICE.full_name
_MESSAGES = {
    m.name: (getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)) for m in _SERVICE.methods
}
"""Each method's request and response classes, as the proto declares them."""
EXTENSIONS = ("model_repository",)
"""What ServerMetadata lists: RepositoryIndex, RepositoryModelLoad and Unload (Triton's name)."""
OPEN_METHODS = frozenset({"ServerLive", "ServerReady", "ModelReady"})
"""Methods answered without the token: the probes' (as /v2/health/* on REST)."""
CANCELLED_STATUS = 499
"""The ``status`` label of a call the client cancelled (nginx's "client closed request")."""

_REQUEST_ID_KEY = REQUEST_ID_HEADER.decode()
_AUTHORIZATION_KEY = AUTHORIZATION.decode()

Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _answered(method: Handler) -> Handler:
    """Wrap a method with parsing, the token check, error statuses, metrics and the access log."""
    name = method.__name__
    route = f"/{SERVICE}/{name}"
    open_method = name in OPEN_METHODS
    request_type = _MESSAGES[name][0]

    @functools.wraps(method)
    async def handler(self: InferenceServicer, data: bytes, context: grpc.aio.ServicerContext) -> Any:
        return await self.call(route, open_method, request_type, method, data, context)

    return handler


def add_to_server(servicer: InferenceServicer, grpc_server: grpc.aio.Server) -> None:
    """Register the service's methods on ``grpc_server``.

    Requests reach the servicer as bytes, which it parses itself: grpc answers a body it
    cannot deserialize with UNKNOWN, and a request that is not a message of its method's
    type is the caller's mistake (INVALID_ARGUMENT, as every other bad input).
    """
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name), request_deserializer=None, response_serializer=response.SerializeToString
        )
        for name, (_, response) in _MESSAGES.items()
    }
    grpc_server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    grpc_server.add_registered_method_handlers(SERVICE, handlers)


class InferenceServicer:
    """The service's methods over one worker's :class:`ModelServer`."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        options = server.options
        self.limit = options.max_body_bytes
        self.token = BearerToken(options.auth_token, server.runtime.name) if options.auth_token else None
        self.access_log = not options.quiet
        # The labelled series of each (route, status, model labels) seen, as the REST middleware keeps them.
        self._series: dict[tuple[str, int, tuple[str, str]], tuple[Any, Any]] = {}

    async def call(
        self,
        route: str,
        open_method: bool,
        request_type: Any,
        method: Handler,
        data: bytes,
        context: grpc.aio.ServicerContext,
    ) -> Any:
        """Parse and run one method: answer its response, or end the call with the status of its error."""
        started = time.perf_counter()
        metadata = context.invocation_metadata() or ()
        request_id = _request_id(metadata)
        context.set_trailing_metadata(((_REQUEST_ID_KEY, request_id),))
        status = 200
        code = grpc.StatusCode.OK
        labels = NO_MODEL
        try:
            if self.token is not None and not open_method:
                self._authorize(metadata)
            if len(data) > self.limit:  # grpc's own limit is the same; this keeps the message REST's
                raise PayloadTooLargeError(f"the body is {len(data)} bytes; the limit is {self.limit} bytes")
            request = _parse(request_type, data)
            labels = self._labels(request)
            return await method(self, request, context)
        except QuaysideError as e:
            status, code = e.http_status, status_code(e)
            await context.abort(code, e.message, trailing_metadata=((_REQUEST_ID_KEY, request_id),))
        except asyncio.CancelledError:
            status, code = CANCELLED_STATUS, grpc.StatusCode.CANCELLED
            raise
        except Exception as e:
            if isinstance(e, grpc.aio.AbortError):
                raise
            status, code = 500, grpc.StatusCode.INTERNAL
            logger.error("unexpected error in request %s (a bug in Quayside)", request_id, exc_info=e)
            message = f"internal error; the server log has the details under request id {request_id}"
            await context.abort(code, message, trailing_metadata=((_REQUEST_ID_KEY, request_id),))
        finally:
            self._record(route, status, code, request_id, time.perf_counter() - started, context, labels)

    def _labels(self, request: Any) -> tuple[str, str]:
        """The ``model`` and ``version`` labels of a call that names a served model."""
        name = getattr(request, "model_name", None) or getattr(request, "name", "")
        model = self.server.models.get(name)
        return model.labels if model is not None else NO_MODEL

    def _authorize(self, metadata: Any) -> None:
        assert self.token is not None
        authorization = next((v for k, v in metadata if k == _AUTHORIZATION_KEY), None)
        raw = authorization.encode("latin-1", "replace") if isinstance(authorization, str) else authorization
        if not self.token.accepts(raw):
            raise self.token.refusal(raw)

    def _record(
        self,
        route: str,
        status: int,
        code: grpc.StatusCode,
        request_id: str,
        seconds: float,
        context: grpc.aio.ServicerContext,
        labels: tuple[str, str] = NO_MODEL,
    ) -> None:
        series = self._series.get((route, status, labels))
        if series is None:
            metrics = self.server.metrics
            series = (
                metrics.requests.labels(route, str(status), *labels),
                metrics.latency.labels(route, *labels),
            )
            self._series[(route, status, labels)] = series
        series[0].inc()
        series[1].observe(seconds)
        if self.access_log:
            line = {
                "ts": time.time(),
                "request_id": request_id,
                "method": "gRPC",
                "path": route,
                "status": status,
                "grpc_status": code.name,
                "duration_ms": round(seconds * 1000, 3),
                "client": context.peer(),
            }
            access_logger.info(orjson.dumps(line).decode())

    # --- health and metadata ---------------------------------------------------------------

    @_answered
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @_answered
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.server.ready)

    @_answered
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        self.server.check_model(request.name, request.version)
        return pb.ModelReadyResponse(ready=self.server.health.ready)

    @_answered
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Any
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="quayside", version=__version__, extensions=EXTENSIONS)

    @_answered
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        runtime = (await self.server.model(request.name, request.version)).runtime
        return pb.ModelMetadataResponse(
            name=runtime.name,
            versions=[runtime.version] if runtime.version is not None else [],
            platform=runtime.platform,
            inputs=_tensor_metadata(v2.tensor_metadata(runtime.signature.inputs)),
            outputs=_tensor_metadata(v2.tensor_metadata(runtime.signature.outputs)),
        )

    # --- inference -------------------------------------------------------------------------

    @_answered
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        server = self.server
        if not server.health.ready:
            raise _not_ready(server)
        model = await server.model(request.model_name, request.model_version)
        signature = model.runtime.signature
        parsed = tensors.parse_infer_request(request, signature.inputs)
        outputs = await model.predict(parsed)
        return tensors.render_infer_response(
            outputs,
            signature.outputs,
            model_name=model.name,
            model_version=model.version,
            request_id=parsed.id,
            raw=tensors.uses_raw_contents(request),
        )

    # --- the model repository extension ----------------------------------------------------

    @_answered
    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: Any
    ) -> pb.RepositoryIndexResponse:
        if not self.server.health.ready and request.ready:
            return pb.RepositoryIndexResponse()
        entries = [
            pb.RepositoryIndexResponse.ModelIndex(
                name=entry.name, version=entry.version, state=entry.state, reason=entry.reason
            )
            for entry in self.server.index()
            if not request.ready or entry.state == "READY"
        ]
        return pb.RepositoryIndexResponse(models=entries)

    @_answered
    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Any
    ) -> pb.RepositoryModelLoadResponse:
        await self.server.load(request.model_name, _load_source(request))
        return pb.RepositoryModelLoadResponse()

    @_answered
    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Any
    ) -> pb.RepositoryModelUnloadResponse:
        await self.server.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse()


def _load_source(request: pb.RepositoryModelLoadRequest) -> str | None:
    """The path or URI in a load request's ``uri`` parameter (a string); None when it has none."""
    if "uri" not in request.parameters:
        return None
    parameter = request.parameters["uri"]
    if parameter.WhichOneof("parameter_choice") != "string_param" or not parameter.string_param.strip():
        raise InvalidRequestError("parameter 'uri': must be a model path or URI (a non-empty string)")
    return parameter.string_param.strip()


def _tensor_metadata(tensors_: list[dict[str, Any]]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [pb.ModelMetadataResponse.TensorMetadata(**tensor) for tensor in tensors_]


def _parse(request_type: Any, data: bytes) -> Any:
    try:
        return request_type.FromString(data)
    except DecodeError:
        name = request_type.DESCRIPTOR.full_name
        raise MalformedInputError(f"the request is not a valid {name} message (protobuf)") from None


def _not_ready(server: ModelServer) -> UnavailableError:
    if server.health.draining:
        return UnavailableError("the model server is shutting down and takes no new requests; retry")
    return UnavailableError("the model server is not ready yet; retry")


def _request_id(metadata: Any) -> str:
    """The caller's ``x-request-id`` metadata when it is a sane one, else a new id."""
    for key, value in metadata:
        if key == _REQUEST_ID_KEY and isinstance(value, str):
            return (
                incoming_request_id([(REQUEST_ID_HEADER, value.encode("latin-1", "replace"))])
                or new_request_id()
            )
    return new_request_id()
