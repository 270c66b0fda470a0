"""The model server's ASGI app: route table, error handlers and lifespan.

Routes parse with a protocol module, run through the batcher, and render with
the same protocol module; nothing here knows a wire format.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from quayside.errors import InvalidRequestError, QuaysideError
from quayside.serving import openapi
from quayside.serving.docs import install_docs, markdown_literal
from quayside.serving.errors import JSON, error_response, json_error, unexpected_error_response
from quayside.serving.fastpath import FastPath, read_limited_body
from quayside.serving.following import AliasFollower, VersionProbe
from quayside.serving.middleware import MODEL_KEY, RequestContext
from quayside.serving.model_server import ModelLoader, ModelServer
from quayside.serving.options import ServeOptions
from quayside.serving.protocols import v2
from quayside.serving.protocols.binary import HEADER_LENGTH, OCTET_STREAM, Framed, response_headers
from quayside.serving.repository import add_repository_routes
from quayside.serving.runtime import ModelRuntime
from quayside.serving.served_model import ServedModel
from quayside.version import __version__

IMPORTED_AT = time.monotonic()
"""When this module, and with it the framework, the runtime and the packager, had been imported:
the end of the import phase of ``quayside_startup_phase_seconds``."""


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QuaysideError)
    async def quayside_error(request: Request, error: QuaysideError) -> Response:
        return error_response(error, request.scope["path"])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = (
            f"no route {request.method} {request.url.path}"
            if error.status_code in (404, 405)
            else error.detail
        )
        return json_error(request.scope["path"], error.status_code, code, message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(InvalidRequestError(f"{where}: {first['msg']}"), request.scope["path"])

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> Response:
        return unexpected_error_response(request.scope, error)


def create_app(
    runtimes: ModelRuntime | Sequence[ModelRuntime],
    options: ServeOptions,
    *,
    loader: ModelLoader | None = None,
    sources: Sequence[str] = (),
    probe: VersionProbe | None = None,
) -> Any:
    """The ASGI app serving loaded models with V2, ``/invocations``, health, metrics and docs.

    ``loader`` loads a model the repository extension is asked to load (none: it can load none);
    ``sources`` are where ``runtimes`` were loaded from, as the repository index shows them;
    ``probe`` says which version a moving source (an alias) names now, for the server to follow
    it every ``options.follow_interval_s`` (none, or an interval of 0: it follows nothing).
    """
    server = ModelServer(runtimes, options, imported_at=IMPORTED_AT, loader=loader, sources=sources)
    follower = (
        AliasFollower(server, probe, options.follow_interval_s)
        if probe is not None and options.follow_interval_s > 0
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        if follower is not None:
            follower.start()
        try:
            yield
        finally:
            if follower is not None:
                await follower.stop()
            await server.stop()

    names = ", ".join(server.models)
    app = FastAPI(
        title=f"Quayside: {names}",
        version=__version__,
        description="\n\n".join(_describe(model.runtime) for model in server.models.values()),
        docs_url=None,  # served by install_docs, which escapes the title (it carries the model's name)
        redoc_url=None,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "inference", "description": "Predictions (V2 and MLflow /invocations)"},
            {"name": "health", "description": "Liveness, readiness and model metadata"},
            {
                "name": "repository",
                "description": "Loading and unloading models (the model repository extension)",
            },
        ],
    )
    app.state.server = server
    _install_error_handlers(app)
    install_docs(app)
    _add_health_routes(app, server)
    _add_inference_routes(app, server)
    add_repository_routes(app, server)
    return RequestContext(FastPath(app, server), server.metrics, access_log=not options.quiet)


def _describe(runtime: ModelRuntime) -> str:
    inputs = ", ".join(spec.describe() for spec in runtime.signature.inputs.specs)
    outputs = ", ".join(spec.describe() for spec in runtime.signature.outputs.specs)
    name, platform = markdown_literal(runtime.name), markdown_literal(runtime.platform)
    return f"Serves model **{name}** on {platform}.\n\nInputs: {inputs}\n\nOutputs: {outputs}"


async def _served(request: Request, server: ModelServer, name: str, version: str = "") -> ServedModel:
    """The model a route names (404 otherwise), with its labels put where the metrics read them."""
    model = await server.model(name, version)
    request.scope[MODEL_KEY] = model.labels
    return model


def _checked(request: Request, server: ModelServer, name: str, version: str = "") -> None:
    """A route names a model this server answers for (404 otherwise); an evicted one stays evicted."""
    server.check_model(name, version)
    model = server.models.get(name)
    if model is not None:
        request.scope[MODEL_KEY] = model.labels


def _add_health_routes(app: FastAPI, server: ModelServer) -> None:
    def ready_response() -> Response:
        ready = server.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/v2/health/live", tags=["health"])
    async def live() -> Response:
        return JSONResponse({"live": True})

    @app.get("/v2/health/ready", tags=["health"])
    async def ready() -> Response:
        return ready_response()

    @app.get("/ping", tags=["health"], summary="Readiness, MLflow style")
    async def ping() -> Response:
        return ready_response()

    @app.get("/v2", tags=["health"], summary="Server metadata")
    async def server_metadata() -> Response:
        return JSONResponse(
            {
                "name": "quayside",
                "version": __version__,
                "extensions": ["binary_tensor_data", "model_repository"],
            }
        )

    def metadata_response(model: ServedModel) -> Response:
        runtime = model.runtime
        document: dict[str, Any] = {
            "name": runtime.name,
            "platform": runtime.platform,
            "inputs": v2.tensor_metadata(runtime.signature.inputs),
            "outputs": v2.tensor_metadata(runtime.signature.outputs),
        }
        if runtime.version is not None:
            document["versions"] = [runtime.version]
        return JSONResponse(document)

    def model_ready_response() -> Response:
        ready = server.health.ready  # the model is loaded (else 404): ready unless the process drains
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/v2/models/{model_name}", tags=["health"], summary="Model metadata")
    async def model_metadata(model_name: str, request: Request) -> Response:
        return metadata_response(await _served(request, server, model_name))

    @app.get(
        "/v2/models/{model_name}/versions/{model_version}", tags=["health"], summary="Model version metadata"
    )
    async def model_version_metadata(model_name: str, model_version: str, request: Request) -> Response:
        return metadata_response(await _served(request, server, model_name, model_version))

    @app.get("/v2/models/{model_name}/ready", tags=["health"], summary="Model readiness")
    async def model_ready(model_name: str, request: Request) -> Response:
        _checked(request, server, model_name)
        return model_ready_response()

    @app.get(
        "/v2/models/{model_name}/versions/{model_version}/ready",
        tags=["health"],
        summary="Model version readiness",
    )
    async def model_version_ready(model_name: str, model_version: str, request: Request) -> Response:
        _checked(request, server, model_name, model_version)
        return model_ready_response()

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type=server.metrics.content_type)


def _add_inference_routes(app: FastAPI, server: ModelServer) -> None:
    # With several models, the request schemas document the first one's signature.
    options, manifest = server.options, server.runtime.model.manifest
    errors = {
        "400": {"description": "Malformed JSON or CSV, or not a request of this protocol"},
        "413": {"description": "Body over the size limit"},
        "422": {"description": "Inputs do not match the model's signature"},
    }
    v2_documentation: dict[str, Any] = {
        "tags": ["inference"],
        "description": openapi.V2_BINARY_EXTENSION,
        "openapi_extra": {
            "parameters": [openapi.V2_HEADER_LENGTH_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": openapi.v2_request_schema(manifest)},
                    OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
                },
            },
        },
        "responses": {"200": openapi.V2_RESPONSE} | errors,
    }

    async def answer_v2(request: Request, model_name: str, model_version: str = "") -> Response:
        model = await _served(request, server, model_name, model_version)
        body = await read_limited_body(request.scope, request.receive, options.max_body_bytes)
        if model.retired:
            model = await model.answering()
        reply = await model.infer_v2(body, request.headers.get(HEADER_LENGTH))
        headers = model.headers
        if isinstance(reply, Framed):
            return Response(reply.body, media_type=OCTET_STREAM, headers=response_headers(reply) | headers)
        return Response(reply, media_type=JSON, headers=headers)

    @app.post(
        "/v2/models/{model_name}/infer", summary="Predict (Open Inference Protocol V2)", **v2_documentation
    )
    async def infer_v2(model_name: str, request: Request) -> Response:
        return await answer_v2(request, model_name)

    @app.post(
        "/v2/models/{model_name}/versions/{model_version}/infer",
        summary="Predict with a given version of the model (Open Inference Protocol V2)",
        **v2_documentation,
    )
    async def infer_v2_version(model_name: str, model_version: str, request: Request) -> Response:
        return await answer_v2(request, model_name, model_version)

    @app.post(
        "/invocations",
        tags=["inference"],
        summary="Predict (MLflow scoring protocol: JSON layouts or CSV)",
        description="With several models served, `?model=NAME` says which one answers.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": openapi.invocations_request_schema(manifest)},
                    "text/csv": {"schema": {"type": "string", "description": "header row, then data rows"}},
                },
            }
        },
        responses=errors | {"415": {"description": "Content type other than JSON or CSV"}},
    )
    async def invocations_route(request: Request, model: str | None = None) -> Response:
        served = await server.invocations_model(model)
        request.scope[MODEL_KEY] = served.labels
        body = await read_limited_body(request.scope, request.receive, options.max_body_bytes)
        content_type = request.headers.get("content-type", "")
        if served.retired:
            served = await served.answering()
        reply = await served.invocations(body, content_type)
        return Response(reply, media_type=JSON, headers=served.headers)
