"""The model repository extension over REST: list, load and unload the models a worker serves.

``POST /v2/repository/index`` lists them (name, version, state, as Triton answers);
``POST /v2/repository/models/{name}/load`` loads (or reloads) one from the path or model URI
in ``{"parameters": {"uri": ...}}`` (by default, where it was loaded from before);
``POST /v2/repository/models/{name}/unload`` stops serving it. The handlers are the same
:class:`~quayside.serving.model_server.ModelServer` methods gRPC's Repository* calls run.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from quayside.errors import InvalidRequestError
from quayside.serving.fastpath import read_limited_body
from quayside.serving.model_server import ModelServer
from quayside.serving.protocols.codec import loads


async def _body(request: Request, server: ModelServer) -> dict[str, Any]:
    """The request's JSON object; an empty body is an empty object."""
    body = await read_limited_body(request.scope, request.receive, server.options.max_body_bytes)
    if not body.strip():
        return {}
    document = loads(body)
    if not isinstance(document, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return document


def load_source(document: dict[str, Any]) -> str | None:
    """The path or URI a load request names in ``parameters.uri``; None when it names none."""
    parameters = document.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidRequestError("parameters: must be a JSON object")
    uri = parameters.get("uri")
    if uri is None:
        return None
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidRequestError("parameters.uri: must be a model path or URI (a non-empty string)")
    return uri.strip()


def add_repository_routes(app: FastAPI, server: ModelServer) -> None:
    @app.post("/v2/repository/index", tags=["repository"], summary="The models served, loading or unloaded")
    async def index(request: Request) -> Response:
        document = await _body(request, server)
        ready_only = document.get("ready", False) is True
        entries = [
            {"name": e.name, "version": e.version, "state": e.state, "reason": e.reason}
            for e in server.index()
            if not ready_only or e.state == "READY"
        ]
        return JSONResponse(entries)

    @app.post(
        "/v2/repository/models/{model_name}/load",
        tags=["repository"],
        summary="Load (or reload) a model, from the path or URI in parameters.uri",
    )
    async def load(model_name: str, request: Request) -> Response:
        source = load_source(await _body(request, server))
        await server.load(model_name, source)
        return JSONResponse({})

    @app.post("/v2/repository/models/{model_name}/unload", tags=["repository"], summary="Unload a model")
    async def unload(model_name: str, request: Request) -> Response:
        await _body(request, server)
        await server.unload(model_name)
        return JSONResponse({})
