"""Passwords: Argon2 hashes, one answer for every failed login, and a failed-login counter kept in the
database so that every server replica (every store over it) slows the same guesser down."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from quayside.db.engine import Sessions
from quayside.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidNameError,
    InvalidStateError,
    UsageError,
)
from quayside.identity.secrets import hash_password, verify_password
from quayside.identity.store import BAD_CREDENTIALS, LOCKOUT_S, MAX_FAILED_LOGINS, IdentityStore, lockout_ms
from tests.identity.conftest import Clock, unique

PASSWORD = "correct horse battery staple"


def failed_login(store: IdentityStore, name: str, password: str = "wrong password") -> str:
    with pytest.raises(AuthenticationError) as refused:
        store.authenticate_password(name, password)
    return refused.value.message


def test_passwords_are_argon2id_hashes_that_verify():
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert hash_password(PASSWORD) != hashed  # salted
    assert verify_password(PASSWORD, hashed)
    assert not verify_password("wrong password", hashed)
    assert not verify_password(PASSWORD, None)
    assert not verify_password(PASSWORD, "not a hash")


def test_a_short_password_is_refused(store: IdentityStore):
    with pytest.raises(UsageError, match="at least 8 characters"):
        store.create_user(unique(), password="short")


def test_a_login_returns_the_users_identity_and_is_audited(store: IdentityStore):
    name = unique()
    store.create_user(name, password=PASSWORD, admin=True)
    store.create_group(group := unique("group"), actor="admin")
    store.add_member(group, name, actor="admin")
    identity = store.authenticate_password(name, PASSWORD)
    assert (identity.name, identity.is_admin, identity.groups) == (name, True, frozenset({group}))
    assert failed_login(store, name) == BAD_CREDENTIALS
    events = [(e.action, e.actor) for e in store.auth_events(1000) if e.subject == name]
    assert events[:3] == [("login_failed", name), ("login", name), ("user_created", "local admin")]


def test_unknown_users_disabled_users_and_service_accounts_fail_like_a_wrong_password(store: IdentityStore):
    disabled, service = unique(), unique("svc")
    store.create_user(disabled, password=PASSWORD)
    store.disable_user(disabled, actor="admin")
    store.create_user(service, service=True)
    assert failed_login(store, unique("nobody"), PASSWORD) == BAD_CREDENTIALS
    assert failed_login(store, disabled, PASSWORD) == BAD_CREDENTIALS
    assert failed_login(store, service, PASSWORD) == BAD_CREDENTIALS
    assert failed_login(store, "bad\x00name\n", PASSWORD) == BAD_CREDENTIALS
    with pytest.raises(UsageError, match="cannot have a password"):
        store.set_password(service, PASSWORD)
    with pytest.raises(UsageError, match="cannot have a password"):
        store.create_user(unique("svc"), service=True, password=PASSWORD)


def test_repeated_failures_are_slowed_down_for_every_store_over_the_database(
    fresh_database_url: str, clock: Clock
):
    # Two stores over one database stand for two server replicas: the counter is in the database.
    first = IdentityStore(Sessions(fresh_database_url, "identity"), clock=clock)
    second = IdentityStore(Sessions(fresh_database_url, "identity"), clock=clock)
    first.create_user("alice", password=PASSWORD)
    for attempt in range(MAX_FAILED_LOGINS):
        assert failed_login(first if attempt % 2 else second, "alice") == BAD_CREDENTIALS
    # Refused without a check, even with the right password, on either store.
    assert (
        failed_login(second, "alice", PASSWORD)
        == f"too many failed logins for 'alice'; try again in {LOCKOUT_S:.0f} s"
    )
    clock.advance(LOCKOUT_S - 1)
    assert failed_login(first, "alice", PASSWORD) == "too many failed logins for 'alice'; try again in 1 s"
    clock.advance(1)
    assert failed_login(first, "alice") == BAD_CREDENTIALS  # one more guess after the wait ...
    assert "try again in 60 s" in failed_login(second, "alice", PASSWORD)  # ... doubles it
    clock.advance(2 * LOCKOUT_S)
    assert second.authenticate_password("alice", PASSWORD).name == "alice"  # a success clears the count
    for _ in range(MAX_FAILED_LOGINS):
        assert failed_login(first, "alice") == BAD_CREDENTIALS
    actions = [e.action for e in first.auth_events(100) if e.subject == "alice"]
    assert actions.count("login_throttled") == 3 and actions.count("login") == 1


def test_the_wait_doubles_up_to_a_limit():
    assert [lockout_ms(n) for n in range(MAX_FAILED_LOGINS)] == [0] * MAX_FAILED_LOGINS
    assert lockout_ms(MAX_FAILED_LOGINS) == LOCKOUT_S * 1000
    assert lockout_ms(MAX_FAILED_LOGINS + 1) == 2 * LOCKOUT_S * 1000
    assert lockout_ms(MAX_FAILED_LOGINS + 50) == 15 * 60 * 1000


def test_setting_a_password_clears_the_failed_logins(store: IdentityStore):
    name = unique()
    store.create_user(name, password=PASSWORD)
    for _ in range(MAX_FAILED_LOGINS):
        failed_login(store, name)
    assert "too many failed logins" in failed_login(store, name, PASSWORD)
    store.set_password(name, "a new password", actor="admin")
    assert store.authenticate_password(name, "a new password").name == name


def test_user_names_follow_one_rule_and_are_unique(store: IdentityStore):
    name = unique()
    store.create_user(name)
    with pytest.raises(AlreadyExistsError, match=f"user '{name}' already exists"):
        store.create_user(name)
    for bad in ("", "group:admins", "has space", "-dash", "a" * 129, "tab\tname"):
        with pytest.raises(InvalidNameError):
            store.create_user(bad)
    assert store.create_user(f"{name}@example.com").name == f"{name}@example.com"


def test_the_last_enabled_admin_stays(fresh_database_url: str):
    store = IdentityStore(Sessions(fresh_database_url, "identity"))
    assert not store.has_users()
    store.create_user("root", admin=True)
    assert store.has_users()
    with pytest.raises(InvalidStateError, match="last enabled admin"):
        store.disable_user("root")
    with pytest.raises(InvalidStateError, match="last enabled admin"):
        store.set_admin("root", False)
    store.create_user("other")
    store.set_admin("other", True)
    assert store.disable_user("root").disabled
    assert [u.name for u in store.list_users() if u.is_admin and not u.disabled] == ["other"]


def test_parallel_guesses_cannot_slip_under_the_limit(fresh_database_url: str):
    store = IdentityStore(Sessions(fresh_database_url, "identity"))
    store.create_user("alice", password=PASSWORD)
    with ThreadPoolExecutor(max_workers=12) as pool:
        messages = list(pool.map(lambda _: failed_login(store, "alice"), range(12)))
    # Each attempt is counted before its password is checked, so no more than the limit get a check.
    assert messages.count(BAD_CREDENTIALS) == MAX_FAILED_LOGINS, messages
    assert all(m.startswith("too many failed logins") for m in messages if m != BAD_CREDENTIALS)
