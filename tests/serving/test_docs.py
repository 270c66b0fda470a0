"""The OpenAPI document both apps serve lists a request that fails validation under its real status."""

from __future__ import annotations

import json

from fastapi import FastAPI
from starlette.testclient import TestClient

from quayside.errors import InvalidRequestError
from quayside.serving.docs import install_docs


def test_a_route_with_parameters_documents_the_invalid_request_status_not_fastapis_422():
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app)

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items/{item_id}", responses={422: {"description": "Inputs do not match"}})
    def update(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
    get, post = document["paths"]["/items/{item_id}"]["get"], document["paths"]["/items/{item_id}"]["post"]
    assert str(InvalidRequestError.http_status) == "400" and "422" not in get["responses"]
    assert InvalidRequestError.code in get["responses"]["400"]["description"]
    assert post["responses"]["422"] == {"description": "Inputs do not match"}  # a route's own stays
    assert "HTTPValidationError" not in json.dumps(document)
