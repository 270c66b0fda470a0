"""The web UI's login sessions: a signed cookie, its expiry, and the CSRF token derived from it.

A session is a cookie (``quayside_session``) holding the user's name and a random session
id, signed and timestamped with itsdangerous (``URLSafeTimedSerializer``, HMAC-SHA1 over a
key derived from the secret); the server keeps no session table, so any replica with the
same secret accepts it. It is ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the request came
over https, and lasts ``session_max_age_s`` (checked from the signed timestamp, not only
the cookie's ``Max-Age``). The secret is ``QUAYSIDE_SESSION_SECRET``, else a random key
generated once into ``$QUAYSIDE_HOME/session_secret`` (mode 0600).

CSRF: the token is an HMAC of the session id under the same secret, so it needs no
storage either; pages carry it in ``<meta name="csrf-token">`` and the UI's scripts send it
as ``X-CSRF-Token``. :func:`session_user` refuses (403) a state-changing request that
carries the cookie without a valid token, so no route can act on a cookie alone. The
login and logout forms post the token as a form field instead and check it themselves
(:data:`FORM_ROUTES`); the login form's token is bound to a short-lived nonce cookie
(double submit), so another site cannot log a browser into its own account either.
Bearer and Basic requests never look at the cookie and need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from quayside.config import Settings
from quayside.errors import PermissionDeniedError, UsageError

SESSION_COOKIE = "quayside_session"
LOGIN_COOKIE = "quayside_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SECRET_FILE = "session_secret"
LOGIN_FORM_MAX_AGE_S = 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_ROUTES = frozenset({"/login", "/logout"})
"""Form posts that check the CSRF token in their own body (a browser form cannot send a header)."""


@dataclass(frozen=True)
class Session:
    user: str
    session_id: str


def load_secret(settings: Settings) -> bytes:
    """``session_secret``, else the key in ``$QUAYSIDE_HOME/session_secret``, made on first use.

    The key file appears whole or not at all: it is written under a name of its own and
    hard-linked into place, so a second server starting on the same home either makes
    it first or reads the first one's key, never a file still being written (which would
    be an empty key).
    """
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    path = Path(settings.home) / SECRET_FILE
    existing = _read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    scratch = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secret + b"\n")
        os.link(scratch, path)
    except FileExistsError:
        # Another server on this home made it first: use theirs, so both accept the same cookies
        # (or, were it deleted since, make one again).
        return load_secret(settings)
    finally:
        scratch.unlink(missing_ok=True)
    return secret


def _read_secret(path: Path) -> bytes | None:
    """The key in ``path``; None when there is no such file; an error when it holds no key."""
    try:
        existing = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    if not existing:
        raise UsageError(
            f"the session key file {path} is empty; delete it (a new key is made, and everyone "
            "signed in to the web UI signs in again) or set QUAYSIDE_SESSION_SECRET"
        )
    return existing


class SessionKeys:
    """Signs and reads session cookies and derives CSRF tokens; one per app."""

    def __init__(self, secret: bytes, max_age_s: int) -> None:
        self._secret = secret
        self.max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(secret, salt="quayside.ui.session")

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionKeys:
        return cls(load_secret(settings), settings.session_max_age_s)

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def issue(self, user: str) -> tuple[str, Session]:
        """A new session for ``user``: the cookie's value and what it holds."""
        session = Session(user=user, session_id=secrets.token_urlsafe(24))
        return self._serializer.dumps({"u": session.user, "s": session.session_id}), session

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie holds; ``None`` when absent, forged, or older than ``max_age_s``."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is one
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), str)
            or not isinstance(data.get("s"), str)
        ):
            return None
        return Session(user=data["u"], session_id=data["s"])

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.session_id)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), str(token))

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def check_login_token(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(self.login_token(str(nonce)), str(token))


def session_keys(request: HTTPConnection) -> SessionKeys:
    from quayside.server.deps import get_state

    return get_state(request).sessions


def current_session(request: HTTPConnection) -> Session | None:
    """The request's valid session, if its cookie holds one (no CSRF check: for reading pages)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    # No cookie, no key needed: a server without logins never makes a secret.
    return session_keys(request).read(cookie) if cookie else None


def session_user(request: HTTPConnection) -> str | None:
    """The user the request's session cookie names, or ``None`` without a valid session.

    A state-changing request (not GET, HEAD or OPTIONS) with a session must carry its CSRF
    token in ``X-CSRF-Token``, else this raises :class:`PermissionDeniedError` (403): a
    cross-site form or script cannot act with the user's cookie.
    """
    session = current_session(request)
    if session is None:
        return None
    keys = session_keys(request)
    if request.scope.get("method") in SAFE_METHODS or request.url.path in FORM_ROUTES:
        return session.user
    if not keys.check_csrf(session, request.headers.get(CSRF_HEADER)):
        raise PermissionDeniedError(
            f"this request carries the web UI's session cookie but no valid CSRF token ({CSRF_HEADER} "
            "header); reload the page and try again, or call the API with a token (Authorization: Bearer)"
        )
    return session.user


def csrf_token(request: Request) -> str | None:
    """The CSRF token of the request's session, for the page's meta tag; ``None`` without one."""
    session = current_session(request)
    return session_keys(request).csrf_token(session) if session else None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, response: Response, user: str) -> Session:
    """Log ``user`` in: set a fresh session cookie on ``response`` (a new session id each login)."""
    keys = session_keys(request)
    value, session = keys.issue(user)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=keys.max_age_s,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return session


def end_session(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="lax")


def new_login_form(request: Request) -> tuple[str, str]:
    """A nonce for the login form and the CSRF token bound to it (the form's hidden field)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    return nonce, session_keys(request).login_token(nonce)


def remember_login_form(request: Request, response: Response, nonce: str) -> None:
    """Set the login form's nonce cookie: only this browser can post the form it was given."""
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_FORM_MAX_AGE_S,
        path="/login",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def check_login_form(request: Request, token: str | None) -> bool:
    return session_keys(request).check_login_token(request.cookies.get(LOGIN_COOKIE), token)


def check_form_csrf(request: Request, token: str | None) -> Session | None:
    """The session a form post (logout) acts on, when it carries that session's CSRF token."""
    session = current_session(request)
    if session is None or not session_keys(request).check_csrf(session, token):
        return None
    return session
