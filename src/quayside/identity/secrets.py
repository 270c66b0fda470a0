"""Passwords and API tokens: how they are made, stored and checked. Nothing here stores or logs a secret.

Passwords are hashed with Argon2id through ``pwdlib`` (a maintained library; no
hand-rolled crypto). API tokens look like ``qs_<prefix>_<secret>``: the prefix is a
public lookup key (a check reads one row), the secret is 256 random bits, and the
database keeps only the SHA-256 of the whole token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from quayside.errors import UsageError

TOKEN_SCHEME = "qs"
PREFIX_BYTES = 6
"""12 hex digits: 48 bits, so two tokens' prefixes practically never clash (a clash is retried)."""
SECRET_BYTES = 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
"""Longer passwords are refused before hashing, so a huge one cannot make a login expensive."""


@functools.cache
def _hasher():
    # pwdlib loads argon2-cffi; only a process that checks a password pays for the import.
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(),))


def check_password(password: str) -> str:
    """``password`` if it is acceptable, else :class:`UsageError` saying why."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"a password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UsageError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """An Argon2id hash (``$argon2id$...``, salt and parameters included) of an acceptable password."""
    return _hasher().hash(check_password(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches ``password_hash``. With no hash (an unknown user, a service
    account) a dummy hash is checked anyway, so the answer takes as long either way."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    if password_hash is None:
        _hasher().verify(password, _dummy_hash())
        return False
    from pwdlib.exceptions import UnknownHashError

    try:
        return _hasher().verify(password, password_hash)
    except UnknownHashError:
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class MintedToken:
    """A new token, its lookup prefix and the hash to store; ``token`` is shown once and never stored."""

    token: str
    prefix: str
    token_hash: str


def mint_token() -> MintedToken:
    prefix = secrets.token_hex(PREFIX_BYTES)
    token = f"{TOKEN_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return MintedToken(token=token, prefix=prefix, token_hash=token_hash(token))


def token_hash(token: str) -> str:
    """The stored form of a token: SHA-256 of the whole token, in hex.

    A fast, unsalted hash is right here, unlike for passwords: a token carries 256 random
    bits, so there is no dictionary to try and no brute force that a slow hash would slow
    down. A salt or Argon2 would only make every API request pay ~50 ms for nothing.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_prefix(token: str) -> str | None:
    """The lookup prefix of something shaped like a Quayside token, else ``None``."""
    if not isinstance(token, str):
        return None
    scheme, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != TOKEN_SCHEME or len(prefix) != 2 * PREFIX_BYTES or not secret:
        return None
    if any(character not in "0123456789abcdef" for character in prefix):
        return None
    return prefix


def token_matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(token_hash(token), stored_hash)
