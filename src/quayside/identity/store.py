"""The identity store: users, service accounts, tokens, groups, grants and the auth audit log, in SQL.

Every method opens a session, works in one transaction and returns frozen dataclasses
from :mod:`quayside.identity.entities` (never ORM rows). Every change — a user, a
password, a token, a group, a grant — and every login and failed login writes one
``auth_events`` row in the same transaction. The failed-login counter is a column of
the user's row, so every server replica over one database sees the same count.

Credentials that do not work fail with one message that does not say why (an unknown
user, a wrong password, a revoked token, a disabled account read the same), so that a
caller cannot learn which names exist or which tokens were once valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, delete, false, func, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from quayside.config import Settings
from quayside.db.engine import DatabaseTimeouts, Sessions
from quayside.db.sql import now_ms
from quayside.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidStateError,
    NotFoundError,
    UsageError,
)
from quayside.identity.entities import (
    GROUP_PRINCIPAL,
    AuthEvent,
    Grant,
    Group,
    NewToken,
    TokenInfo,
    User,
)
from quayside.identity.model import Identity, Level, PrincipalKind, Resource, ResourceKind
from quayside.identity.secrets import hash_password, mint_token, token_matches, token_prefix, verify_password
from quayside.identity.tables import (
    NAME_LENGTH,
    RESOURCE_KEY_LENGTH,
    ApiTokenRow,
    AuthEventRow,
    GrantRow,
    GroupMemberRow,
    GroupRow,
    UserRow,
)
from quayside.names import check_name, check_pattern, shown

T = TypeVar("T")

# A user or group name appears in `group:NAME` principals and in audit entries: no ':' or spaces,
# but '@' so that an e-mail address can be a user name.
PRINCIPAL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@\-]{0,127}")
PRINCIPAL_NAME_RULE = "use 1 to 128 letters, digits, '_', '-', '.' and '@', starting with a letter or digit"

LOCAL_ACTOR = "local admin"
"""The actor the audit log names for a change made with a local command (the database, no server)."""

BAD_CREDENTIALS = "wrong user name or password"
BAD_TOKEN = "the token is not valid (unknown, expired or revoked, or its account is disabled)"

MAX_FAILED_LOGINS = 5
"""Failed password logins in a row after which each further attempt must wait."""
LOCKOUT_S = 30.0
"""The wait after :data:`MAX_FAILED_LOGINS` failures; it doubles with each further failure."""
MAX_LOCKOUT_S = 15 * 60.0
LAST_USED_RESOLUTION_MS = 60_000
"""``last_used_at`` is rewritten at most once a minute per token, so a busy token does not turn
every API request into a database write."""


class AuthAction(StrEnum):
    """What an auth audit entry records."""

    USER_CREATED = "user_created"
    PASSWORD_SET = "password_set"
    ADMIN_SET = "admin_set"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    GROUP_CREATED = "group_created"
    GROUP_DELETED = "group_deleted"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    GRANT_SET = "grant_set"
    GRANT_REMOVED = "grant_removed"


def check_principal_name(kind: str, name: object) -> str:
    """A user, service account or group name, else :class:`~quayside.errors.InvalidNameError`."""
    return check_pattern(kind, name, PRINCIPAL_NAME_PATTERN, PRINCIPAL_NAME_RULE, max_length=NAME_LENGTH)


def check_resource(resource: Resource) -> Resource:
    if not isinstance(resource, Resource):
        raise UsageError(f"a grant is on an experiment or a model, not {type(resource).__name__}")
    kind = ResourceKind(resource.kind)
    key = resource.key
    if not isinstance(key, str) or not key or len(key) > RESOURCE_KEY_LENGTH or "\x00" in key:
        raise UsageError(f"{kind} key must be 1 to {RESOURCE_KEY_LENGTH} characters of text")
    return Resource(kind, key)


def lockout_ms(failed_logins: int) -> int:
    """How long after the last failure a user with ``failed_logins`` failures in a row must wait."""
    if failed_logins < MAX_FAILED_LOGINS:
        return 0
    doublings = min(failed_logins - MAX_FAILED_LOGINS, 32)  # past the cap anyway; keeps 2**n a small number
    seconds = min(LOCKOUT_S * 2**doublings, MAX_LOCKOUT_S)
    return round(seconds * 1000)


@dataclass(frozen=True)
class _LoginAttempt:
    user_id: int | None
    password_hash: str | None
    wait_ms: int


class IdentityStore:
    """Identities and permissions in the Quayside database (the tracking store's, migrated on first use)."""

    def __init__(self, sessions: Sessions, *, clock: Callable[[], int] = now_ms) -> None:
        self.sessions = sessions
        self.clock = clock
        """Milliseconds since the epoch; tests pass their own to step through lockouts and expiries."""

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityStore:
        return cls(
            Sessions(settings.database_url, "identity", timeouts=DatabaseTimeouts.from_settings(settings))
        )

    def _read(self) -> AbstractContextManager[Session]:
        return self.sessions.read()

    def _write(self) -> AbstractContextManager[Session]:
        return self.sessions.write()

    def _write_once_more_on_clash(self, work: Callable[[Session], T]) -> T:
        """``work`` in a write transaction, run again if a concurrent writer inserted the same row
        first (on PostgreSQL the read before an insert locks nothing): the second run finds the row."""
        try:
            with self._write() as session:
                return work(session)
        except sa_exc.IntegrityError:
            with self._write() as session:
                return work(session)

    def _event(
        self, session: Session, actor: str, action: AuthAction, subject: str, **detail: object
    ) -> None:
        session.add(
            AuthEventRow(
                time=self.clock(),
                actor=actor,
                action=str(action),
                subject=subject,
                detail=json.dumps(detail, sort_keys=True, default=str),
            )
        )

    # --- users and service accounts ---------------------------------------------------------

    def create_user(
        self,
        name: str,
        *,
        password: str | None = None,
        admin: bool = False,
        service: bool = False,
        actor: str = LOCAL_ACTOR,
    ) -> User:
        """A new user (or, with ``service``, a service account, which has tokens only)."""
        kind = PrincipalKind.SERVICE if service else PrincipalKind.USER
        check_principal_name(str(kind), name)
        if service and password is not None:
            raise UsageError(f"service account '{name}' cannot have a password; it signs in with tokens")
        password_hash = hash_password(password) if password is not None else None
        try:
            with self._write() as session:
                row = UserRow(
                    name=name,
                    kind=str(kind),
                    password_hash=password_hash,
                    is_admin=admin,
                    disabled=False,
                    created_at=self.clock(),
                    failed_logins=0,
                )
                session.add(row)
                session.flush()
                self._event(session, actor, AuthAction.USER_CREATED, name, kind=str(kind), admin=admin)
                return _user(row, ())
        except sa_exc.IntegrityError:
            raise AlreadyExistsError(f"user '{name}' already exists") from None

    def get_user(self, name: str) -> User:
        with self._read() as session:
            row = _user_row(session, name)
            return _user(row, _group_names(session, row.id))

    def list_users(self) -> list[User]:
        with self._read() as session:
            rows = session.scalars(select(UserRow).order_by(UserRow.name)).all()
            memberships = _memberships(session)
            return [_user(row, memberships.get(row.id, ())) for row in rows]

    def has_users(self) -> bool:
        """Whether any user or service account exists (none: the server may run in single-user mode)."""
        with self._read() as session:
            return session.scalar(select(UserRow.id).limit(1)) is not None

    def set_password(self, name: str, password: str, *, actor: str = LOCAL_ACTOR) -> User:
        """Set a user's password (and clear its failed-login count); service accounts have none."""
        password_hash = hash_password(password)
        with self._write() as session:
            row = _user_row(session, name)
            if row.kind == PrincipalKind.SERVICE:
                raise UsageError(f"service account '{name}' cannot have a password; it signs in with tokens")
            row.password_hash = password_hash
            row.failed_logins = 0
            row.last_failed_login_at = None
            self._event(session, actor, AuthAction.PASSWORD_SET, name)
            return _user(row, _group_names(session, row.id))

    def set_admin(self, name: str, admin: bool, *, actor: str = LOCAL_ACTOR) -> User:
        with self._write() as session:
            row = _user_row(session, name)
            if row.is_admin and not admin:
                _keep_an_admin(session, row)
            row.is_admin = admin
            self._event(session, actor, AuthAction.ADMIN_SET, name, admin=admin)
            return _user(row, _group_names(session, row.id))

    def disable_user(self, name: str, *, actor: str = LOCAL_ACTOR) -> User:
        """Disable a user: its password and its tokens stop working at once (they are kept)."""
        return self._set_disabled(name, True, actor=actor)

    def enable_user(self, name: str, *, actor: str = LOCAL_ACTOR) -> User:
        return self._set_disabled(name, False, actor=actor)

    def _set_disabled(self, name: str, disabled: bool, *, actor: str) -> User:
        with self._write() as session:
            row = _user_row(session, name)
            if disabled and not row.disabled and row.is_admin:
                _keep_an_admin(session, row)
            if row.disabled != disabled:
                row.disabled = disabled
                action = AuthAction.USER_DISABLED if disabled else AuthAction.USER_ENABLED
                self._event(session, actor, action, name)
            return _user(row, _group_names(session, row.id))

    def identity(self, name: str) -> Identity:
        """The identity of an enabled user by name (for a UI session that stored the name)."""
        with self._read() as session:
            row = session.scalar(select(UserRow).where(UserRow.name == name)) if _plausible(name) else None
            if row is None or row.disabled:
                raise AuthenticationError("the session's user no longer exists or is disabled; log in again")
            return _identity(row, _group_names(session, row.id))

    # --- passwords --------------------------------------------------------------------------

    def authenticate_password(self, name: str, password: str) -> Identity:
        """The identity of a user whose password this is; :class:`AuthenticationError` otherwise.

        After :data:`MAX_FAILED_LOGINS` failures in a row, each attempt within the wait
        (:func:`lockout_ms`) is refused without checking the password. An attempt is counted
        as a failure before the password is checked, in the transaction that read the count,
        so parallel guesses cannot all slip under the limit; a success clears the count.
        """
        who = name if _plausible(name) else shown(str(name))
        attempt = self._begin_login(name)
        if attempt.wait_ms > 0:
            seconds = -(-attempt.wait_ms // 1000)
            raise AuthenticationError(f"too many failed logins for '{who}'; try again in {seconds} s")
        ok = verify_password(password, attempt.password_hash)
        identity = None
        with self._write() as session:
            row = session.get(UserRow, attempt.user_id) if ok and attempt.user_id is not None else None
            if row is not None and not row.disabled:
                row.failed_logins = 0
                row.last_failed_login_at = None
                self._event(session, name, AuthAction.LOGIN, name, method="password")
                identity = _identity(row, _group_names(session, row.id))
            else:
                self._event(session, who, AuthAction.LOGIN_FAILED, who)
        if identity is None:
            raise AuthenticationError(BAD_CREDENTIALS)
        return identity

    def _begin_login(self, name: str) -> _LoginAttempt:
        with self._write() as session:
            row = None
            if _plausible(name):
                row = session.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
            if row is None:
                return _LoginAttempt(user_id=None, password_hash=None, wait_ms=0)
            # Read the clock under the row's lock: a time read before it can be older than the
            # last failure another attempt recorded meanwhile.
            now = self.clock()
            lockout = lockout_ms(row.failed_logins)
            wait = (row.last_failed_login_at or 0) + lockout - now if lockout else 0
            if wait > 0:
                self._event(session, name, AuthAction.LOGIN_THROTTLED, name, wait_ms=wait)
                return _LoginAttempt(user_id=row.id, password_hash=None, wait_ms=wait)
            row.failed_logins += 1
            row.last_failed_login_at = now
            usable = row.kind == PrincipalKind.USER and not row.disabled
            return _LoginAttempt(
                user_id=row.id, password_hash=row.password_hash if usable else None, wait_ms=0
            )

    # --- tokens -----------------------------------------------------------------------------

    def create_token(
        self, user: str, *, name: str = "", expires_at_ms: int | None = None, actor: str
    ) -> NewToken:
        """A new API token for ``user``: :attr:`NewToken.token` is its only plaintext copy."""
        if name:
            check_name("token", name, max_length=NAME_LENGTH)
        now = self.clock()
        if expires_at_ms is not None and expires_at_ms <= now:
            raise UsageError("a token's expiry must be in the future")
        for attempt in range(3):
            minted = mint_token()
            try:
                with self._write() as session:
                    owner = _user_row(session, user)
                    if owner.disabled:
                        raise InvalidStateError(f"user '{user}' is disabled; enable it to give it tokens")
                    row = ApiTokenRow(
                        user_id=owner.id,
                        name=name,
                        prefix=minted.prefix,
                        token_hash=minted.token_hash,
                        created_at=now,
                        expires_at=expires_at_ms,
                    )
                    session.add(row)
                    session.flush()
                    self._event(
                        session,
                        actor,
                        AuthAction.TOKEN_CREATED,
                        user,
                        token_id=row.id,
                        prefix=row.prefix,
                        name=name,
                        expires_at=expires_at_ms,
                    )
                    return NewToken(token=minted.token, info=_token(row, owner.name))
            except sa_exc.IntegrityError:
                if attempt == 2:  # three 48-bit prefixes in a row taken: not chance
                    raise
        raise AssertionError("unreachable")

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self._read() as session:
            query = select(ApiTokenRow, UserRow.name).join(UserRow, ApiTokenRow.user_id == UserRow.id)
            if user is not None:
                query = query.where(UserRow.id == _user_row(session, user).id)
            rows = session.execute(query.order_by(ApiTokenRow.id)).all()
            return [_token(token, owner) for token, owner in rows]

    def get_token(self, token_id: int) -> TokenInfo:
        with self._read() as session:
            token, owner = _token_row(session, token_id)
            return _token(token, owner)

    def revoke_token(self, token_id: int, *, actor: str) -> TokenInfo:
        """Revoke a token; it fails from now on. Revoking a revoked token changes nothing."""
        with self._write() as session:
            token, owner = _token_row(session, token_id)
            if token.revoked_at is None:
                token.revoked_at = self.clock()
                self._event(
                    session, actor, AuthAction.TOKEN_REVOKED, owner, token_id=token.id, prefix=token.prefix
                )
            return _token(token, owner)

    def authenticate_token(self, token: str) -> Identity:
        """The identity a token acts as; :class:`AuthenticationError` for any token that does not work."""
        prefix = token_prefix(token)
        if prefix is None:
            raise AuthenticationError(BAD_TOKEN)
        now = self.clock()
        with self._read() as session:
            found = session.execute(
                select(ApiTokenRow, UserRow)
                .join(UserRow, ApiTokenRow.user_id == UserRow.id)
                .where(ApiTokenRow.prefix == prefix)
            ).first()
            if found is None:
                raise AuthenticationError(BAD_TOKEN)
            row, user = found
            usable = (
                token_matches(token, row.token_hash)
                and row.revoked_at is None
                and (row.expires_at is None or row.expires_at > now)
                and not user.disabled
            )
            if not usable:
                raise AuthenticationError(BAD_TOKEN)
            identity = _identity(user, _group_names(session, user.id))
            stale = row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION_MS
            token_id = row.id
        if stale:
            with self._write() as session:
                fresh = session.get(ApiTokenRow, token_id)
                if fresh is not None:
                    fresh.last_used_at = now
        return identity

    # --- groups -----------------------------------------------------------------------------

    def create_group(self, name: str, *, actor: str) -> Group:
        check_principal_name("group", name)
        try:
            with self._write() as session:
                row = GroupRow(name=name, created_at=self.clock())
                session.add(row)
                session.flush()
                self._event(session, actor, AuthAction.GROUP_CREATED, f"{GROUP_PRINCIPAL}{name}")
                return Group(id=row.id, name=row.name, members=(), created_at=row.created_at)
        except sa_exc.IntegrityError:
            raise AlreadyExistsError(f"group '{name}' already exists") from None

    def get_group(self, name: str) -> Group:
        with self._read() as session:
            return _group(session, _group_row(session, name))

    def list_groups(self) -> list[Group]:
        with self._read() as session:
            return [_group(session, row) for row in session.scalars(select(GroupRow).order_by(GroupRow.name))]

    def add_member(self, group: str, user: str, *, actor: str) -> Group:
        """Add a user to a group; adding a member again changes nothing."""

        def add(session: Session) -> Group:
            group_row = _group_row(session, group)
            user_row = _user_row(session, user)
            if session.get(GroupMemberRow, (group_row.id, user_row.id)) is None:
                session.add(GroupMemberRow(group_id=group_row.id, user_id=user_row.id))
                session.flush()
                self._event(session, actor, AuthAction.MEMBER_ADDED, f"{GROUP_PRINCIPAL}{group}", user=user)
            return _group(session, group_row)

        return self._write_once_more_on_clash(add)

    def remove_member(self, group: str, user: str, *, actor: str) -> Group:
        with self._write() as session:
            group_row = _group_row(session, group)
            user_row = _user_row(session, user)
            member = session.get(GroupMemberRow, (group_row.id, user_row.id))
            if member is None:
                raise NotFoundError(f"user '{user}' is not a member of group '{group}'")
            session.delete(member)
            session.flush()
            self._event(session, actor, AuthAction.MEMBER_REMOVED, f"{GROUP_PRINCIPAL}{group}", user=user)
            return _group(session, group_row)

    def delete_group(self, name: str, *, actor: str) -> None:
        """Delete a group, its memberships and its grants."""
        with self._write() as session:
            row = _group_row(session, name)
            session.execute(
                delete(GrantRow).where(GrantRow.principal_kind == "group", GrantRow.principal_id == row.id)
            )
            session.execute(delete(GroupMemberRow).where(GroupMemberRow.group_id == row.id))
            session.delete(row)
            self._event(session, actor, AuthAction.GROUP_DELETED, f"{GROUP_PRINCIPAL}{name}")

    # --- grants -----------------------------------------------------------------------------

    def grant(self, principal: str, resource: Resource, level: Level, *, actor: str) -> Grant | None:
        """Give ``principal`` (a user's name or ``group:NAME``) ``level`` on ``resource``, replacing
        what it held there; :attr:`Level.NONE` removes the grant (and returns ``None``)."""
        resource = check_resource(resource)
        level = Level(level)

        def set_grant(session: Session) -> Grant | None:
            kind, principal_id = _principal(session, principal)
            return self._set_grant(session, kind, principal_id, principal, resource, level, actor)

        return self._write_once_more_on_clash(set_grant)

    def _set_grant(
        self,
        session: Session,
        kind: str,
        principal_id: int,
        principal: str,
        resource: Resource,
        level: Level,
        actor: str,
    ) -> Grant | None:
        row = session.scalar(
            select(GrantRow).where(
                GrantRow.principal_kind == kind,
                GrantRow.principal_id == principal_id,
                GrantRow.resource_kind == str(resource.kind),
                GrantRow.resource_key == resource.key,
            )
        )
        previous = Level(row.level) if row is not None else Level.NONE
        subject = str(resource)
        if level == Level.NONE:
            if row is not None:
                session.delete(row)
                self._event(
                    session,
                    actor,
                    AuthAction.GRANT_REMOVED,
                    subject,
                    principal=principal,
                    previous=str(previous),
                )
            return None
        if row is None:
            row = GrantRow(
                principal_kind=kind,
                principal_id=principal_id,
                resource_kind=str(resource.kind),
                resource_key=resource.key,
                level=int(level),
                created_at=self.clock(),
            )
            session.add(row)
        elif previous == level:
            return _grant(row, principal)
        row.level = int(level)
        session.flush()
        self._event(
            session,
            actor,
            AuthAction.GRANT_SET,
            subject,
            principal=principal,
            level=str(level),
            previous=str(previous),
        )
        return _grant(row, principal)

    def list_grants(self, resource: Resource | None = None, *, principal: str | None = None) -> list[Grant]:
        """Grants on ``resource`` (all resources when ``None``), optionally only ``principal``'s."""
        with self._read() as session:
            query = select(GrantRow).order_by(GrantRow.resource_kind, GrantRow.resource_key, GrantRow.id)
            if resource is not None:
                resource = check_resource(resource)
                query = query.where(
                    GrantRow.resource_kind == str(resource.kind), GrantRow.resource_key == resource.key
                )
            if principal is not None:
                kind, principal_id = _principal(session, principal)
                query = query.where(GrantRow.principal_kind == kind, GrantRow.principal_id == principal_id)
            rows = session.scalars(query).all()
            names = _principal_names(session, rows)
            return [_grant(row, names[(row.principal_kind, row.principal_id)]) for row in rows]

    def level_for(self, identity: Identity, resource: Resource, *, default: Level) -> Level:
        """What ``identity`` may do to ``resource``: :attr:`Level.MANAGE` for an admin, else the highest
        of its own grants, its groups' grants and ``default``."""
        if identity.is_admin:
            return Level.MANAGE
        resource = check_resource(resource)
        held = _held_by(identity)
        if held is None:
            return Level(default)
        with self._read() as session:
            best = session.scalar(
                select(func.max(GrantRow.level)).where(
                    held, GrantRow.resource_kind == str(resource.kind), GrantRow.resource_key == resource.key
                )
            )
        return max(Level(default), Level(best or 0))

    def readable_keys(
        self, identity: Identity, kind: ResourceKind, *, default: Level
    ) -> frozenset[str] | None:
        """The keys of the ``kind`` resources ``identity`` may read, or ``None`` for all of them
        (an admin, or a default of :attr:`Level.READ` or more)."""
        if identity.is_admin or Level(default) >= Level.READ:
            return None
        held = _held_by(identity)
        if held is None:
            return frozenset()
        with self._read() as session:
            keys = session.scalars(
                select(GrantRow.resource_key)
                .where(held, GrantRow.resource_kind == str(ResourceKind(kind)), GrantRow.level >= Level.READ)
                .distinct()
            )
            return frozenset(keys)

    def grant_creator(self, identity: Identity, resource: Resource) -> None:
        """Give the creator of ``resource`` :attr:`Level.MANAGE` on it (nothing for the local user)."""
        if identity.kind == PrincipalKind.LOCAL or identity.user_id is None:
            return
        resource = check_resource(resource)
        user_id = identity.user_id
        self._write_once_more_on_clash(
            lambda session: self._set_grant(
                session, "user", user_id, identity.name, resource, Level.MANAGE, identity.name
            )
        )

    def forget_resource(self, resource: Resource, *, actor: str) -> int:
        """Remove every grant on a deleted resource (so one created later under its key starts
        clean); returns how many there were."""
        resource = check_resource(resource)
        with self._write() as session:
            removed = session.execute(
                delete(GrantRow).where(
                    GrantRow.resource_kind == str(resource.kind), GrantRow.resource_key == resource.key
                )
            ).rowcount
            if removed:
                self._event(
                    session, actor, AuthAction.GRANT_REMOVED, str(resource), principal="*", count=removed
                )
            return removed

    def rename_resource(self, resource: Resource, new_key: str, *, actor: str) -> None:
        """Move the grants of a renamed resource (a registered model is keyed by its name)."""
        resource = check_resource(resource)
        renamed = check_resource(Resource(resource.kind, new_key))
        with self._write() as session:
            rows = session.scalars(
                select(GrantRow).where(
                    GrantRow.resource_kind == str(resource.kind), GrantRow.resource_key == resource.key
                )
            ).all()
            for row in rows:
                row.resource_key = renamed.key
            if rows:
                self._event(session, actor, AuthAction.GRANT_SET, str(renamed), renamed_from=resource.key)

    # --- the auth audit log -----------------------------------------------------------------

    def auth_events(self, limit: int = 100) -> list[AuthEvent]:
        """The newest ``limit`` auth audit entries, newest first."""
        if limit < 1:
            raise UsageError("limit must be at least 1")
        with self._read() as session:
            rows = session.scalars(select(AuthEventRow).order_by(AuthEventRow.id.desc()).limit(limit))
            return [
                AuthEvent(
                    id=row.id,
                    time=row.time,
                    actor=row.actor,
                    action=row.action,
                    subject=row.subject,
                    detail=json.loads(row.detail),
                )
                for row in rows
            ]


# --- rows to entities -----------------------------------------------------------------------


def _plausible(name: object) -> bool:
    """Whether ``name`` could be a principal's name (so text a database cannot compare never reaches it)."""
    return isinstance(name, str) and PRINCIPAL_NAME_PATTERN.fullmatch(name) is not None


def _user_row(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name)) if _plausible(name) else None
    if row is None:
        raise NotFoundError(f"no user named '{name}'")
    return row


def _group_row(session: Session, name: str) -> GroupRow:
    row = session.scalar(select(GroupRow).where(GroupRow.name == name)) if _plausible(name) else None
    if row is None:
        raise NotFoundError(f"no group named '{name}'")
    return row


def _token_row(session: Session, token_id: int) -> tuple[ApiTokenRow, str]:
    found = None
    if isinstance(token_id, int) and 0 < token_id < 2**63:
        found = session.execute(
            select(ApiTokenRow, UserRow.name)
            .join(UserRow, ApiTokenRow.user_id == UserRow.id)
            .where(ApiTokenRow.id == token_id)
        ).first()
    if found is None:
        raise NotFoundError(f"no token with id {token_id}")
    return found[0], found[1]


def _keep_an_admin(session: Session, row: UserRow) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.is_admin, UserRow.disabled == false(), UserRow.id != row.id)
    )
    if not others:
        raise InvalidStateError(f"'{row.name}' is the last enabled admin; make another admin first")


def _principal(session: Session, principal: str) -> tuple[str, int]:
    if isinstance(principal, str) and principal.startswith(GROUP_PRINCIPAL):
        return "group", _group_row(session, principal.removeprefix(GROUP_PRINCIPAL)).id
    return "user", _user_row(session, principal).id


def _principal_names(session: Session, rows: Iterable[GrantRow]) -> dict[tuple[str, int], str]:
    rows = list(rows)
    user_ids = {row.principal_id for row in rows if row.principal_kind == "user"}
    group_ids = {row.principal_id for row in rows if row.principal_kind == "group"}
    names: dict[tuple[str, int], str] = {}
    if user_ids:
        for user_id, name in session.execute(
            select(UserRow.id, UserRow.name).where(UserRow.id.in_(user_ids))
        ):
            names["user", user_id] = name
    if group_ids:
        for group_id, name in session.execute(
            select(GroupRow.id, GroupRow.name).where(GroupRow.id.in_(group_ids))
        ):
            names["group", group_id] = f"{GROUP_PRINCIPAL}{name}"
    for row in rows:  # a principal deleted under the grant (not done by this store) still shows
        names.setdefault((row.principal_kind, row.principal_id), f"{row.principal_kind}#{row.principal_id}")
    return names


def _held_by(identity: Identity) -> ColumnElement[bool] | None:
    """The grants ``identity`` holds, itself or through its groups, as a condition (``None``: none)."""
    conditions = []
    if identity.user_id is not None:
        conditions.append(and_(GrantRow.principal_kind == "user", GrantRow.principal_id == identity.user_id))
    groups = [name for name in identity.groups if _plausible(name)]
    if groups:
        conditions.append(
            and_(
                GrantRow.principal_kind == "group",
                GrantRow.principal_id.in_(select(GroupRow.id).where(GroupRow.name.in_(groups))),
            )
        )
    return or_(*conditions) if conditions else None


def _group_names(session: Session, user_id: int) -> tuple[str, ...]:
    return tuple(
        session.scalars(
            select(GroupRow.name)
            .join(GroupMemberRow, GroupMemberRow.group_id == GroupRow.id)
            .where(GroupMemberRow.user_id == user_id)
            .order_by(GroupRow.name)
        )
    )


def _memberships(session: Session) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for user_id, name in session.execute(
        select(GroupMemberRow.user_id, GroupRow.name)
        .join(GroupRow, GroupMemberRow.group_id == GroupRow.id)
        .order_by(GroupRow.name)
    ):
        found.setdefault(user_id, []).append(name)
    return {user_id: tuple(names) for user_id, names in found.items()}


def _user(row: UserRow, groups: tuple[str, ...]) -> User:
    return User(
        id=row.id,
        name=row.name,
        kind=PrincipalKind(row.kind),
        is_admin=row.is_admin,
        disabled=row.disabled,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        groups=groups,
    )


def _identity(row: UserRow, groups: tuple[str, ...]) -> Identity:
    return Identity(
        name=row.name,
        kind=PrincipalKind(row.kind),
        is_admin=row.is_admin,
        groups=frozenset(groups),
        user_id=row.id,
    )


def _token(row: ApiTokenRow, owner: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=owner,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _group(session: Session, row: GroupRow) -> Group:
    members = tuple(
        session.scalars(
            select(UserRow.name)
            .join(GroupMemberRow, GroupMemberRow.user_id == UserRow.id)
            .where(GroupMemberRow.group_id == row.id)
            .order_by(UserRow.name)
        )
    )
    return Group(id=row.id, name=row.name, members=members, created_at=row.created_at)


def _grant(row: GrantRow, principal: str) -> Grant:
    return Grant(
        principal=principal,
        resource=Resource(ResourceKind(row.resource_kind), row.resource_key),
        level=Level(row.level),
        created_at=row.created_at,
    )
