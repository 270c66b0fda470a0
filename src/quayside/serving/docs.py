"""The interactive API docs page (``/docs``), and Markdown that shows a name as typed.

FastAPI's own docs page puts the app's title into ``<title>`` unescaped, and a model
server's title carries the model's name; so the page is served here instead, with its
title HTML-escaped. The OpenAPI ``description`` is Markdown that Swagger UI renders
as HTML, so a name goes into it through :func:`markdown_literal`.
"""

from __future__ import annotations

import html
import string

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app``'s OpenAPI document at ``/docs`` (create the app with ``docs_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=html.escape(f"{app.title} - Swagger UI"))


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
