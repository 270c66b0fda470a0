"""The identity tables. Times are milliseconds since the epoch, in UTC.

No secret is stored in the clear: ``users.password_hash`` is an Argon2 hash and
``api_tokens.token_hash`` a SHA-256 of the whole token (see :mod:`quayside.identity.secrets`).
A grant names its resource by kind and key (an experiment's id as text, a model's name)
without a foreign key: identity imports no component, and a grant on a deleted resource
grants nothing. The auth audit log names actors and subjects by name, so that it outlives
the users it mentions; nothing in the code updates or deletes its rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quayside.db.base import Base
from quayside.db.sql import BigId

NAME_LENGTH = 128
TOKEN_PREFIX_LENGTH = 16
RESOURCE_KEY_LENGTH = 256


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``user`` or ``service`` (a service account: tokens only)."""
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    """Failed password logins since the last success; kept here so every server replica sees it."""
    last_failed_login_at: Mapped[int | None] = mapped_column(BigInteger)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    prefix: Mapped[str] = mapped_column(String(TOKEN_PREFIX_LENGTH), unique=True)
    """The token's public lookup part (``qs_<prefix>_...``), so a check reads one row."""
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class GroupRow(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class GroupMemberRow(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GrantRow(Base):
    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint(
            "principal_kind",
            "principal_id",
            "resource_kind",
            "resource_key",
            name="uq_grants_principal_resource",
        ),
        Index("ix_grants_resource", "resource_kind", "resource_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    principal_kind: Mapped[str] = mapped_column(String(16))
    """``user`` (a user or a service account) or ``group``."""
    principal_id: Mapped[int] = mapped_column(BigInteger)
    resource_kind: Mapped[str] = mapped_column(String(16))
    resource_key: Mapped[str] = mapped_column(String(RESOURCE_KEY_LENGTH))
    level: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuthEventRow(Base):
    __tablename__ = "auth_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    time: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(512))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    """A JSON object with what else the event knew (a token's id, a grant's level)."""
