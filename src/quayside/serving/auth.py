"""The model server's bearer token (``--auth-token-file``): inference and metadata need it, probes do not.

The token is read once, when the server starts (rotating it means restarting the
server, which ``quayside deploy`` does without a failed request). With a token, every
route needs ``Authorization: Bearer <token>`` except the ones probes and scrapers call:
liveness and readiness (``/v2/health/live``, ``/v2/health/ready``, the model's
``/v2/models/<name>/ready``, ``/ping``) and ``/metrics`` (Prometheus scrapes without
credentials by default, and the metrics hold counts and timings per route, no model data).
Everything else (inference, server and model metadata, ``/docs`` and ``/openapi.json``,
which describe the model's inputs and outputs, and any path that is not a route) answers
401 with ``WWW-Authenticate: Bearer`` without it: the rule is fail-closed.

The check is a header scan and one constant-time comparison, on the fast path as on
FastAPI's routes.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from quayside.errors import AuthenticationError, UsageError
from quayside.hosts import HostAllowList
from quayside.serving.options import ServeOptions

AUTH_TOKEN_FILE_ENV = "QUAYSIDE_AUTH_TOKEN_FILE"
AUTHORIZATION = b"authorization"
CHALLENGE = ("WWW-Authenticate", 'Bearer realm="quayside"')
_BEARER = b"bearer "
_MIN_TOKEN = 16


def read_token_file(path: str | Path) -> bytes:
    """The token in ``path`` (surrounding whitespace dropped), or a one-line :class:`UsageError`."""
    try:
        text = Path(path).read_bytes().strip()
    except FileNotFoundError:
        raise UsageError(f"--auth-token-file: no file {path}") from None
    except OSError as e:
        raise UsageError(f"--auth-token-file: cannot read {path}: {e.strerror}") from None
    if not text:
        raise UsageError(f"--auth-token-file: {path} is empty; put the token in it")
    if not (text.isascii() and all(33 <= c < 127 for c in text)):
        raise UsageError(f"--auth-token-file: the token in {path} must be printable ASCII without spaces")
    if len(text) < _MIN_TOKEN:
        raise UsageError(
            f"--auth-token-file: the token in {path} has {len(text)} characters; use at least {_MIN_TOKEN} "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return text


class BearerToken:
    """The check of one server's token against requests' raw ``Authorization`` headers."""

    def __init__(self, token: bytes, model_name: str) -> None:
        self._token = token
        self._header = b"Bearer " + token  # as clients spell it: one comparison on the hot path
        self.open_paths = frozenset(
            {"/v2/health/live", "/v2/health/ready", "/ping", "/metrics", f"/v2/models/{model_name}/ready"}
        )

    def accepts(self, authorization: bytes | None) -> bool:
        """Whether the raw header value is ``Bearer <this token>`` (scheme in any case)."""
        if authorization is None:
            return False
        if hmac.compare_digest(authorization, self._header):
            return True
        return authorization[:7].lower() == _BEARER and hmac.compare_digest(
            authorization[7:].strip(), self._token
        )

    @staticmethod
    def refusal(authorization: bytes | None) -> AuthenticationError:
        if authorization is None:
            return AuthenticationError(
                "this model server needs a token: send 'Authorization: Bearer <token>'"
            )
        return AuthenticationError("the token in the Authorization header is not this model server's")


def access_line(options: ServeOptions) -> str:
    """One line for the start message: which Host headers are answered, and whether a token is needed."""
    hosts = HostAllowList.for_server(options.host, options.allowed_hosts).describe()
    if options.auth_token is None:
        return f"answering {hosts}; no token needed (--auth-token-file requires one)"
    return f"answering {hosts}; a bearer token needed on every route but health, readiness and /metrics"
