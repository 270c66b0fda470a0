"""``quayside server`` and ``quayside ui``: the tracking and registry REST API and the web UI on one port."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from quayside.cli.console import err
from quayside.config import Settings, load_settings
from quayside.errors import UsageError
from quayside.names import shown

if TYPE_CHECKING:
    from fastapi import FastAPI

WORKER_APP = f"{__name__}:worker_app"
"""What each worker process imports (uvicorn's app factory) when there is more than one."""


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
    workers: Annotated[
        str,
        typer.Option(
            metavar="N",
            help="Server processes answering on the one port (uvicorn's workers; a dead one is restarted). "
            "They share nothing but the database, the artifact root and QUAYSIDE_HOME (where the UI's "
            "session key is made once, unless QUAYSIDE_SESSION_SECRET is set). With SQLite, reads run side "
            "by side but writes take turns on the file's one lock, each waiting up to "
            "QUAYSIDE_DB_LOCK_TIMEOUT_S: for many writers use PostgreSQL.",
        ),
    ] = "1",
) -> None:
    """Serve the web UI and the tracking and registry REST API over the local store and artifact root."""
    import uvicorn

    from quayside.server.app import create_app
    from quayside.server.auth import startup_notice
    from quayside.server.deps import app_state
    from quayside.server.sessions import load_secret

    processes = worker_count(workers)
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
    if settings.auth:
        # Made (or read) before the server says it is up and before any worker starts: a bad
        # key file is one error line, not a failed first login, and every worker reads one key.
        load_secret(settings)
    err.print(notice)
    shown_workers = f", {processes} processes" if processes > 1 else ""
    err.print(
        f"quayside server on http://{host}:{port} (web UI at /, database: {_describe(settings.database_url)}"
        f"{shown_workers})"
    )
    if processes == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        return
    _prepare_workers(settings)
    del app  # the parent only proved that the server starts; each worker makes its own
    uvicorn.run(
        WORKER_APP,
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


def worker_count(text: str) -> int:
    """``--workers``: a whole number of processes, at least 1."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise UsageError(f"--workers takes a whole number of server processes, 1 or more, not {shown(text)}")
    return int(value)


def _prepare_workers(settings: Settings) -> None:
    """Hand the workers this process's settings (through the environment), and what they must share.

    Each worker rebuilds its settings from the environment (:func:`worker_app`), so the
    options given on the command line go there first.
    """
    from quayside.db.engine import dispose_all

    os.environ.update(
        {
            "QUAYSIDE_SERVER_HOST": settings.server_host,
            "QUAYSIDE_SERVER_PORT": str(settings.server_port),
            "QUAYSIDE_AUTH": str(settings.auth).lower(),
            "QUAYSIDE_INSECURE_NO_AUTH": str(settings.insecure_no_auth).lower(),
        }
    )
    if settings.allowed_hosts is not None:
        os.environ["QUAYSIDE_ALLOWED_HOSTS"] = settings.allowed_hosts
    dispose_all()  # the parent serves nothing: its database connections would only sit idle


def worker_app() -> FastAPI:
    """The app of one worker process of ``quayside server --workers N`` (uvicorn's app factory)."""
    from quayside.server.app import create_app

    return create_app(load_settings())


def _describe(url: str) -> str:
    from quayside.db.engine import redact

    return redact(url)
