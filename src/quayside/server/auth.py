"""Who a request to ``quayside server`` acts as: its credentials, resolved to an :class:`Identity` once.

With auth off the caller is the server's one local user (``Identity.local``: may do
everything). With auth on, in this order:

- ``Authorization: Bearer <token>``: an API token (Quayside's clients, ``MLFLOW_TRACKING_TOKEN``);
- ``Authorization: Basic <user:secret>``: a password, or a token in the password's place
  (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``); a token must be the named user's;
- the web UI's signed session cookie (:mod:`quayside.server.sessions`);
- else nobody (``None``): the route's rule decides whether that is enough (public routes) or 401.

Credentials that are present but wrong, expired or revoked are 401 at once: a request is never
quietly downgraded to anonymous. Nothing here decides what an identity may do; that is
:mod:`quayside.server.permissions`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from quayside.errors import AuthenticationError, UsageError
from quayside.identity.model import Identity
from quayside.registry.stages import resolve_actor

if TYPE_CHECKING:
    from quayside.config import Settings
    from quayside.identity.store import IdentityStore

TOKEN_PREFIX = "qs_"
"""How an API token starts (``quayside.identity.secrets``: ``qs_<prefix>_<secret>``); a Basic password
that starts so is checked as a token, so a token never counts as a failed password login."""
BEARER_CHALLENGE = 'Bearer realm="quayside"'
BASIC_CHALLENGE = 'Basic realm="quayside"'
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def local_identity(settings: Settings) -> Identity:
    """The single user of a server without authentication: ``QUAYSIDE_ACTOR``, else the OS user."""
    return Identity.local(resolve_actor(None, settings.actor))


def resolve_identity(connection: HTTPConnection, settings: Settings, store: IdentityStore) -> Identity | None:
    """The identity the request's credentials name, ``None`` without any; 401 for bad ones.

    Blocking (a database read, a password hash): call it from a thread.
    """
    if not settings.auth:
        return local_identity(settings)
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer":
        return store.authenticate_token(credentials)
    if scheme == "basic":
        return _basic(credentials, store)
    if scheme:
        raise AuthenticationError(
            f"the Authorization header's scheme '{scheme[:20]}' is not one Quayside takes: "
            "send 'Bearer <token>' or 'Basic <user:password>'"
        )
    return _session(connection, store)


def _basic(credentials: str, store: IdentityStore) -> Identity:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("the Basic credentials are not base64 of 'user:password'") from None
    name, sep, secret = decoded.partition(":")
    if not sep or not name:
        raise AuthenticationError("the Basic credentials are not 'user:password'")
    if not secret.startswith(TOKEN_PREFIX):
        return store.authenticate_password(name, secret)
    identity = store.authenticate_token(secret)
    if identity.name != name:
        # A token with someone else's name beside it is a mistake or a forgery; neither is let through.
        raise AuthenticationError(f"the token given as the password is not a token of user '{name}'")
    return identity


def _session(connection: HTTPConnection, store: IdentityStore) -> Identity | None:
    try:
        from quayside.server.sessions import session_user
    except ImportError:  # a server built without the web UI's sessions
        return None
    name = session_user(connection)  # type: ignore[arg-type]  # it reads cookies only
    if name is None:
        return None
    return store.identity(name)


def challenge(connection: HTTPConnection) -> str:
    """The ``WWW-Authenticate`` value of a 401 for this request: Basic when it tried Basic, else Bearer.

    Bearer by default so that a browser's ``fetch`` from the UI never pops up a password dialog.
    """
    scheme = connection.headers.get("authorization", "").partition(" ")[0].lower()
    return BASIC_CHALLENGE if scheme == "basic" else BEARER_CHALLENGE


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) reaches this machine only."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def startup_notice(settings: Settings, host: str, has_users: bool) -> str:
    """What ``quayside server`` prints on start about who may use it, or :class:`UsageError` (one line)
    when it must not start: auth on and nobody to sign in, or auth off on a reachable address."""
    if settings.auth:
        if not has_users:
            raise UsageError(
                "authentication is on but the server has no users: create the first admin with "
                "`quayside admin create-user NAME --admin` (it prints a one-time token), then start again"
            )
        return f"authentication on; users without a grant may {settings.auth_default_permission} resources"
    if is_loopback(host):
        return "single-user mode without authentication (loopback only); start with --auth for a team"
    if not settings.insecure_no_auth:
        raise UsageError(
            f"refusing to listen on {host} without authentication: anyone who can reach it could read and "
            "change everything; start with --auth, or --insecure-no-auth to accept that"
        )
    return (
        f"WARNING: listening on {host} WITHOUT authentication (--insecure-no-auth): anyone who can "
        "reach this port may read, change and delete every experiment, run and model"
    )
