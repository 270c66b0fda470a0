"""``quayside login URL`` and ``quayside logout URL``: save or forget an API token for one server.

The token is read from the terminal without echo (or from stdin with ``--token-stdin``),
checked against the server with one authenticated request, and saved with
:mod:`quayside.credentials` (mode 0600). It is never printed. ``QUAYSIDE_TOKEN``, when
set, wins over a saved token.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from quayside import credentials
from quayside.cli.console import err, out
from quayside.config import load_settings
from quayside.errors import AuthenticationError, UsageError
from quayside.restclient import JsonApi
from quayside.tracking.rest import API_PREFIX as TRACKING_PREFIX

UrlArgument = Annotated[
    str | None,
    typer.Argument(help="The server, http(s)://host:port (default: QUAYSIDE_TRACKING_URI)."),
]


def _server_url(url: str | None) -> str:
    url = url or load_settings().tracking_uri
    if not url:
        raise UsageError("name the server: `quayside login http://host:port` (or set QUAYSIDE_TRACKING_URI)")
    return credentials.server_key(url)


def _read_token(from_stdin: bool) -> str:
    token = sys.stdin.read() if from_stdin else typer.prompt("Token", hide_input=True)
    token = token.strip()
    if not token:
        raise UsageError("no token given")
    return token


def _accepts(url: str, token: str | None) -> bool:
    """Whether the server answers an authenticated read with ``token`` (401 means it does not)."""
    api = JsonApi(url, TRACKING_PREFIX, what="server", timeout_s=load_settings().http_timeout_s, token=token)
    try:
        api.json("GET", "/experiments")
    except AuthenticationError:
        return False
    finally:
        api.close()
    return True


def login(
    url: UrlArgument = None,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from stdin instead of prompting.")
    ] = False,
) -> None:
    """Check an API token against a server and save it for that server (readable by you only)."""
    url = _server_url(url)
    token = _read_token(token_stdin)
    if not _accepts(url, token):
        raise AuthenticationError(f"{url} refused the token (unknown, expired or revoked); nothing was saved")
    path = credentials.save_token(load_settings().home, url, token)
    out.print(f"logged in to {url}; the token is saved in {path}")
    if _accepts(url, None):
        err.print(f"note: {url} does not require a token (it runs without --auth)")


def logout(url: UrlArgument = None) -> None:
    """Forget the token saved for a server."""
    url = _server_url(url)
    if credentials.remove_token(load_settings().home, url):
        out.print(f"logged out of {url}; its token is removed")
    else:
        out.print(f"no token was saved for {url}")
