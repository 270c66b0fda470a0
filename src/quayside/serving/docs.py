"""The interactive API docs page (``/docs``), and Markdown that shows a name as typed.

FastAPI's own docs page puts the app's title into ``<title>`` unescaped, and a model
server's title carries the model's name; so the page is served here instead, with its
title HTML-escaped. The OpenAPI ``description`` is Markdown that Swagger UI renders
as HTML, so a name goes into it through :func:`markdown_literal`.

FastAPI documents a 422 "Validation Error" of its own shape on every route that takes
parameters; both Quayside apps answer such a request with an
:class:`~quayside.errors.InvalidRequestError` instead, and the document says so.
"""

from __future__ import annotations

import html
import json
import string
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from quayside.errors import InvalidRequestError

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app``'s OpenAPI document at ``/docs`` (create the app with ``docs_url=None``).

    The document lists a request that fails validation under the status it is answered with.
    """
    openapi_url = app.openapi_url or "/openapi.json"
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_invalid_requests(build_openapi())  # FastAPI keeps the document it built
        return app.openapi_schema  # type: ignore[return-value]  # built just above

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to amend its document

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=html.escape(f"{app.title} - Swagger UI"))


_INVALID_REQUEST = {
    "description": f"The request does not fit this endpoint's schema ({InvalidRequestError.code}; "
    "the message names the field)"
}


def _document_invalid_requests(document: dict[str, Any]) -> None:
    status = str(InvalidRequestError.http_status)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's own
                del responses["422"]
                responses.setdefault(status, _INVALID_REQUEST)
    schemas = document.get("components", {}).get("schemas", {})
    if "#/components/schemas/HTTPValidationError" not in json.dumps(document.get("paths", {})):
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's body of its 422
            schemas.pop(unused, None)


def markdown_literal(text: str) -> str:
    """``text`` as Markdown that renders exactly as typed: no HTML, links, emphasis or new blocks."""
    out = []
    for char in text:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in string.punctuation:
            out.append("\\" + char)  # CommonMark: any ASCII punctuation may be backslash-escaped
        elif not char.isprintable():
            out.append(" ")  # a line break would start a block
        else:
            out.append(char)
    return "".join(out)
