"""What ``quayside server`` does against other sites' pages, in every mode: Host and body types.

- **Host allow-list** (:mod:`quayside.hosts`): a request whose ``Host`` the server does not
  answer to gets 400 ``invalid_host`` before any route sees it (DNS rebinding).
- **Body types of state-changing requests.** A page on another site can make a browser
  send a POST without asking the server first only with a "simple" body: ``text/plain``,
  a form, ``multipart/form-data``, or no Content-Type at all (``fetch`` with a typeless
  ``Blob``); anything else (JSON, PUT, PATCH, DELETE, a custom header) needs a CORS
  preflight, which this server never approves (it has no CORS at all). So a POST must
  declare ``application/json`` or the type its route declares in :data:`BODY_TYPES`, and a
  PUT, PATCH or DELETE that declares a type must declare one of those (one without a
  Content-Type, such as a DELETE with query parameters or a bare upload, cannot come from
  another site). Anything else is 415 and changes nothing. The login and logout forms
  (:data:`sessions.FORM_ROUTES`) carry the CSRF token in their own body and check it
  themselves.

Plain ASGI ahead of the framework, as :mod:`~quayside.server.limits` is.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from quayside.config import Settings
from quayside.errors import QuaysideError, UnsupportedMediaTypeError
from quayside.hosts import HOST_HEADER, HostAllowList, parse_allowed_hosts
from quayside.server.errors import error_response
from quayside.server.mlflow import ARTIFACTS_PREFIXES, MLFLOW_PREFIXES
from quayside.server.mlflow.errors import mlflow_error
from quayside.server.registry import REGISTRY_PREFIX
from quayside.server.sessions import FORM_ROUTES
from quayside.server.tracking import TRACKING_PREFIX

JSON = "application/json"
ANY_TYPE = "*/*"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM = "application/x-www-form-urlencoded"

BODY_TYPES: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = (
    # Quayside's client streams a run artifact as octet-stream.
    (
        "PUT",
        re.compile(re.escape(TRACKING_PREFIX) + r"/runs/[^/]+/artifacts/file"),
        frozenset({"application/octet-stream"}),
    ),
    # A package to register: the tar Quayside's client sends (or a body declared only binary).
    (
        "POST",
        re.compile(re.escape(REGISTRY_PREFIX) + r"/models/[^/]+/versions"),
        frozenset({"application/x-tar", "application/octet-stream"}),
    ),
    # The mlflow client sends each artifact with the type it guesses from the file's name
    # (text/plain for a .txt, text/html for a .html, ...). A PUT cannot come from another site
    # without a preflight, so any type is safe here.
    *(
        ("PUT", re.compile(re.escape(prefix) + r"/artifacts/.+"), frozenset({ANY_TYPE}))
        for prefix in ARTIFACTS_PREFIXES
    ),
    *(("POST", re.compile(re.escape(path)), frozenset({FORM})) for path in sorted(FORM_ROUTES)),
)
"""The state-changing routes whose body is not JSON, and the media types each takes."""
_MLFLOW_PATHS = MLFLOW_PREFIXES + ARTIFACTS_PREFIXES


def declared_types(method: str, path: str) -> frozenset[str]:
    """The media types a state-changing request to ``path`` may carry (JSON unless declared)."""
    for route_method, pattern, types in BODY_TYPES:
        if method == route_method and pattern.fullmatch(path):
            return types
    return frozenset({JSON})


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    host = content_type = None
    for key, value in scope["headers"]:
        if key == HOST_HEADER:
            host = value
        elif key == b"content-type":
            content_type = value
    return host, content_type


def media_type(content_type: bytes) -> str:
    return content_type.decode("latin-1").partition(";")[0].strip().lower()


def body_type_refusal(method: str, path: str, content_type: bytes | None) -> str | None:
    """Why a state-changing request's body type is refused, or None when it may go on."""
    types = declared_types(method, path)
    if content_type is None:
        if method != "POST":
            return None
        wanted = " or ".join(sorted(types - {ANY_TYPE})) or JSON
        return f"{method} {path} needs a body with Content-Type {wanted}; this request has no Content-Type"
    given = media_type(content_type)
    if given in types or ANY_TYPE in types:
        return None
    wanted = " or ".join(sorted(types))
    return (
        f"{method} {path} takes Content-Type {wanted}, not '{given[:100]}'; nothing was changed "
        "(a plain-text or form body is what another site's page can send, so it is refused)"
    )


class BrowserHardening:
    """ASGI middleware: refuse a Host the server does not answer to, and a state-changing body of the wrong type."""

    def __init__(self, app: ASGIApp, hosts: HostAllowList) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host, content_type = _headers(scope)
        if not self.hosts.allows(host):
            assert host is not None
            await _render(scope, self.hosts.refusal(host))(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method in STATE_CHANGING:
            reason = body_type_refusal(method, scope["path"], content_type)
            if reason is not None:
                await _render(scope, UnsupportedMediaTypeError(reason))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _render(scope: Scope, error: QuaysideError) -> JSONResponse:
    if scope["path"].startswith(_MLFLOW_PATHS) and error.http_status == 415:
        return mlflow_error(error)
    return error_response(error.http_status, error.code, error.message)


def allowed_hosts(settings: Settings) -> HostAllowList:
    """The Host allow-list of a server with these settings (``allowed_hosts``, else by ``server_host``)."""
    return HostAllowList.for_server(settings.server_host, parse_allowed_hosts(settings.allowed_hosts))
