"""API tokens: random, shown once, stored only as a hash, with a lookup prefix, an expiry, a last-used time
and revocation; every token that does not work fails alike."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from quayside.db.engine import Sessions
from quayside.errors import AuthenticationError, InvalidStateError, NotFoundError, UsageError
from quayside.identity.model import PrincipalKind
from quayside.identity.store import BAD_TOKEN, LAST_USED_RESOLUTION_MS, IdentityStore
from tests.identity.conftest import Clock, unique


def every_stored_value(store: IdentityStore) -> str:
    """Every row of every table of the database, as one text."""
    engine = store.sessions.engine
    parts = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            parts.extend(repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{table}"')))
    return "\n".join(parts)


def test_the_database_holds_no_plaintext_token_or_password(fresh_database_url: str):
    store = IdentityStore(Sessions(fresh_database_url, "identity"))
    password = "correct horse battery staple"
    store.create_user("alice", password=password)
    new = store.create_token("alice", name="laptop", actor="alice")
    assert new.token.startswith(f"qs_{new.info.prefix}_")
    assert new.token not in repr(new) and new.token not in repr(new.info)  # shown once, as .token only
    assert store.authenticate_password("alice", password).name == "alice"
    assert store.authenticate_token(new.token).name == "alice"

    stored = every_stored_value(store)
    secret = new.token.removeprefix(f"qs_{new.info.prefix}_")
    assert new.token not in stored and secret not in stored
    assert password not in stored
    assert new.info.prefix in stored  # the lookup prefix is public
    with store.sessions.engine.connect() as connection:
        password_hash = connection.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert password_hash.startswith("$argon2id$")


def test_a_token_acts_as_its_user_until_it_expires(store: IdentityStore, clock: Clock):
    name = unique("ci")
    store.create_user(name, service=True)
    new = store.create_token(name, expires_at_ms=clock.now + 60_000, actor="admin")
    identity = store.authenticate_token(new.token)
    assert (identity.name, identity.kind, identity.is_admin) == (name, PrincipalKind.SERVICE, False)
    assert identity.user_id == store.get_user(name).id
    clock.advance(60)
    with pytest.raises(AuthenticationError) as refused:
        store.authenticate_token(new.token)
    assert refused.value.message == BAD_TOKEN
    assert store.get_token(new.info.id).status(clock.now) == "expired"


def test_a_revoked_token_fails_and_revoking_again_changes_nothing(store: IdentityStore, clock: Clock):
    name = unique()
    store.create_user(name)
    new = store.create_token(name, actor="admin")
    keep = store.create_token(name, actor="admin")
    revoked = store.revoke_token(new.info.id, actor="admin")
    assert revoked.revoked_at == clock.now and revoked.status(clock.now) == "revoked"
    with pytest.raises(AuthenticationError, match="not valid"):
        store.authenticate_token(new.token)
    assert store.authenticate_token(keep.token).name == name  # the user's other tokens still work
    clock.advance(5)
    assert store.revoke_token(new.info.id, actor="admin").revoked_at == revoked.revoked_at
    with pytest.raises(NotFoundError, match="no token with id 999999999"):
        store.revoke_token(999999999, actor="admin")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda token: "", id="empty"),
        pytest.param(lambda token: "not a token", id="malformed"),
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="wrong secret"),
        pytest.param(lambda token: "qs_000000000000_" + token.split("_", 2)[2], id="unknown prefix"),
        pytest.param(lambda token: token.upper(), id="changed case"),
        pytest.param(lambda token: token + "\x00", id="NUL"),
    ],
)
def test_every_token_that_does_not_work_fails_with_one_message(store: IdentityStore, mangle):
    name = unique()
    store.create_user(name)
    new = store.create_token(name, actor="admin")
    with pytest.raises(AuthenticationError) as refused:
        store.authenticate_token(mangle(new.token))
    assert refused.value.message == BAD_TOKEN
    assert refused.value.http_status == 401


def test_a_disabled_users_tokens_stop_working_and_work_again_when_enabled(store: IdentityStore):
    name = unique()
    store.create_user(name)
    new = store.create_token(name, actor="admin")
    store.disable_user(name, actor="admin")
    with pytest.raises(AuthenticationError) as refused:
        store.authenticate_token(new.token)
    assert refused.value.message == BAD_TOKEN
    with pytest.raises(InvalidStateError, match="is disabled"):
        store.create_token(name, actor="admin")
    store.enable_user(name, actor="admin")
    assert store.authenticate_token(new.token).name == name


def test_last_used_is_recorded_at_most_once_a_minute(store: IdentityStore, clock: Clock):
    name = unique()
    store.create_user(name)
    new = store.create_token(name, actor="admin")
    assert new.info.last_used_at is None
    first = clock.now
    store.authenticate_token(new.token)
    assert store.get_token(new.info.id).last_used_at == first
    clock.advance(LAST_USED_RESOLUTION_MS / 1000 / 2)
    store.authenticate_token(new.token)
    assert store.get_token(new.info.id).last_used_at == first  # a busy token is not a write per request
    clock.advance(LAST_USED_RESOLUTION_MS / 1000)
    store.authenticate_token(new.token)
    assert store.get_token(new.info.id).last_used_at == clock.now


def test_tokens_are_listed_without_their_secret_and_their_changes_are_audited(
    store: IdentityStore, clock: Clock
):
    name = unique()
    store.create_user(name)
    first = store.create_token(name, name="laptop", actor="admin")
    second = store.create_token(name, name="ci", expires_at_ms=clock.now + 1000, actor="admin")
    store.revoke_token(first.info.id, actor="root")
    listed = store.list_tokens(name)
    assert [(t.id, t.name, t.status(clock.now)) for t in listed] == [
        (first.info.id, "laptop", "revoked"),
        (second.info.id, "ci", "active"),
    ]
    assert {t.id for t in store.list_tokens()} >= {first.info.id, second.info.id}
    events = [e for e in store.auth_events(1000) if e.subject == name and e.action.startswith("token")]
    assert [(e.action, e.actor, e.detail["token_id"]) for e in events] == [
        ("token_revoked", "root", first.info.id),
        ("token_created", "admin", second.info.id),
        ("token_created", "admin", first.info.id),
    ]
    assert all(first.token not in str(e.detail) for e in events)


def test_an_expiry_in_the_past_and_an_unknown_user_are_refused(store: IdentityStore, clock: Clock):
    name = unique()
    store.create_user(name)
    with pytest.raises(UsageError, match="expiry must be in the future"):
        store.create_token(name, expires_at_ms=clock.now, actor="admin")
    with pytest.raises(NotFoundError, match="no user named 'nobody-"):
        store.create_token(unique("nobody"), actor="admin")
