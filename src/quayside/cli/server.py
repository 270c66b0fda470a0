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
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            help="Host names the server answers to, comma-separated (any port; '*' for any); other Host "
            "headers get 400 (DNS rebinding). The loopback names are always answered. Default "
            "(QUAYSIDE_ALLOWED_HOSTS, else): only them bound to loopback; the address too bound to another; "
            "any bound to 0.0.0.0 or ::.",
            show_default=False,
        ),
    ] = None,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Require credentials (tokens, passwords, UI logins) and check each request's permissions "
            "(default: QUAYSIDE_AUTH, else off). Create the first admin with "
            "`quayside admin create-user NAME --admin`.",
            show_default=False,
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve a non-loopback address without authentication: anyone who reaches the port may "
            "read and change everything.",
        ),
    ] = False,
) -> None:
    """Serve the web UI and the tracking and registry REST API over the local store and artifact root."""
    import uvicorn

    from quayside.server.app import create_app
    from quayside.server.auth import startup_notice
    from quayside.server.deps import app_state

    settings = load_settings()
    host = host or settings.server_host
    port = port or settings.server_port
    settings = settings.model_copy(
        update={
            "server_host": host,
            "server_port": port,
            "allowed_hosts": allowed_hosts or settings.allowed_hosts,
            "auth": settings.auth if auth is None else auth,
            "insecure_no_auth": insecure_no_auth or settings.insecure_no_auth,
        }
    )
    # Refused before the database is opened: a server that must not start touches nothing.
    notice = None if settings.auth else startup_notice(settings, host, has_users=False)
    app = create_app(settings)
    if notice is None:
        notice = startup_notice(settings, host, has_users=app_state(app).identity.has_users())
    err.print(notice)
    err.print(
        f"quayside server on http://{host}:{port} (web UI at /, database: {_describe(settings.database_url)})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _describe(url: str) -> str:
    from quayside.db.engine import redact

    return redact(url)
