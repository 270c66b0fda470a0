"""What the identity store returns: frozen dataclasses, never ORM rows, and never a secret but once.

A :class:`NewToken` is the only value that holds a token in the clear; it exists
between its creation and the moment it is shown to its owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from quayside.identity.model import Level, PrincipalKind, Resource

GROUP_PRINCIPAL = "group:"
"""How a grant's principal names a group (``group:ml-team``); a bare name is a user."""


@dataclass(frozen=True)
class User:
    """A user (password and tokens) or a service account (tokens only)."""

    id: int
    name: str
    kind: PrincipalKind
    is_admin: bool
    disabled: bool
    has_password: bool
    created_at: int
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    """An API token as anyone may see it: its id, owner, prefix and times, never the token."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None

    def status(self, now_ms: int) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now_ms:
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``token`` is shown once, to its owner, and is nowhere else."""

    token: str = field(repr=False)
    info: TokenInfo


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    members: tuple[str, ...]
    created_at: int


@dataclass(frozen=True)
class Grant:
    """``principal`` (a user's name, or ``group:NAME``) holds ``level`` on ``resource``."""

    principal: str
    resource: Resource
    level: Level
    created_at: int


@dataclass(frozen=True)
class AuthEvent:
    """One entry of the auth audit log: a login, a failed login, a token, group, user or grant change."""

    id: int
    time: int
    actor: str
    action: str
    subject: str
    detail: Mapping[str, object]
