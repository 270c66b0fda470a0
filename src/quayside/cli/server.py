"""``quayside server`` and ``quayside ui``: the tracking and registry REST API and the web UI on one port."""

from __future__ import annotations

from typing import Annotated

import typer

from quayside.cli.console import err
from quayside.config import load_settings


def server(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: QUAYSIDE_SERVER_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port to listen on (default: QUAYSIDE_SERVER_PORT or 5000)."),
    ] = None,
) -> None:
    """Serve the web UI and the tracking and registry REST API over the local store and artifact root."""
    import uvicorn

    from quayside.server.app import create_app

    settings = load_settings()
    host = host or settings.server_host
    port = port or settings.server_port
    app = create_app(settings)
    err.print(
        f"quayside server on http://{host}:{port} (web UI at /, database: {_describe(settings.database_url)})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _describe(url: str) -> str:
    from quayside.db.engine import redact

    return redact(url)
