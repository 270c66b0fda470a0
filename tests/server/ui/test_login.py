"""The web UI's login: a signed, HttpOnly, SameSite cookie session, its expiry, CSRF tokens, and logout.

In-process (``create_app`` + Starlette's test client) with auth on; the browser test
(``test_login_browser.py``) does the same things in Chromium against a real server.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from quayside import save_model
from quayside.config import Settings
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.server.app import create_app
from quayside.server.deps import app_state
from quayside.server.sessions import CSRF_HEADER, SECRET_FILE, SESSION_COOKIE, SessionKeys
from quayside.server.ui.login import safe_next

PASSWORD = "correct horse battery staple"
BASE = "http://127.0.0.1"


def _settings(home: Path, **overrides) -> Settings:
    values = {"home": home, "auth": True, "auth_default_permission": "none"} | overrides
    return Settings(**values)


@pytest.fixture
def app(tmp_path: Path):
    app = create_app(_settings(tmp_path))
    store = app_state(app).identity
    store.create_user("admin", password=PASSWORD, admin=True)
    store.create_user("alice", password=PASSWORD)
    return app


def _login_form(client: TestClient, next_path: str = "/") -> str:
    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _login(client: TestClient, user: str = "alice", password: str = PASSWORD, next_path: str = "/"):
    token = _login_form(client, next_path)
    form = {"username": user, "password": password, "csrf_token": token, "next": next_path}
    return client.post("/login", data=form, follow_redirects=False)


def _meta_csrf(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def test_an_anonymous_visitor_is_sent_to_the_login_page_and_back_after_logging_in(app):
    client = TestClient(app, base_url=BASE)
    page = client.get("/models?x=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fmodels%3Fx%3D1"

    answer = _login(client, next_path="/models?x=1")
    assert answer.status_code == 303 and answer.headers["location"] == "/models?x=1"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert PASSWORD not in cookie

    home = client.get("/")
    assert home.status_code == 200
    assert 'id="session-user">alice<' in home.text


def test_a_session_cookie_is_secure_over_https(app):
    client = TestClient(app, base_url="https://127.0.0.1")
    answer = _login(client)
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_a_wrong_password_shows_the_message_and_sets_no_session(app):
    client = TestClient(app, base_url=BASE)
    answer = _login(client, password="not it")
    assert answer.status_code == 401
    assert "wrong user name or password" in answer.text
    assert SESSION_COOKIE not in answer.cookies
    assert client.get("/", follow_redirects=False).status_code == 303
    events = [e.action for e in app_state(app).identity.auth_events()]
    assert "login_failed" in events


def test_a_login_form_posted_from_another_site_logs_nobody_in(app):
    """Without the nonce cookie the form's token is bound to (SameSite=Strict), the token is worthless."""
    other_browser = TestClient(app, base_url=BASE)
    token = _login_form(other_browser)
    victim = TestClient(app, base_url=BASE)
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token, "next": "/"}
    answer = victim.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 403
    assert "came from another site" in answer.text
    assert SESSION_COOKIE not in answer.cookies


def test_a_forged_or_expired_cookie_is_no_session(app, monkeypatch):
    client = TestClient(app, base_url=BASE)
    keys: SessionKeys = app_state(app).sessions
    forged = SessionKeys(b"another key", 3600).issue("admin")[0]
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/", follow_redirects=False).status_code == 303

    now = int(TimestampSigner.get_timestamp(TimestampSigner(b"k")))
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now - keys.max_age_s - 1)
    stale = keys.issue("admin")[0]
    monkeypatch.undo()
    client.cookies.set(SESSION_COOKIE, stale)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert keys.read(stale) is None


def test_a_state_changing_request_with_the_cookie_needs_the_csrf_token(app):
    client = TestClient(app, base_url=BASE)
    _login(client, user="admin")
    refused = client.post("/api/tracking/experiments", json={"name": "no-token"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "CSRF token" in refused.json()["error"]["message"]
    wrong = client.post(
        "/api/tracking/experiments", json={"name": "no-token"}, headers={CSRF_HEADER: "0" * 64}
    )
    assert wrong.status_code == 403
    tracking = app_state(app).tracking
    assert "no-token" not in {e.name for e in tracking.list_experiments()}

    token = _meta_csrf(client.get("/").text)
    made = client.post("/api/tracking/experiments", json={"name": "with-token"}, headers={CSRF_HEADER: token})
    assert made.status_code == 201, made.text
    assert "with-token" in {e.name for e in tracking.list_experiments()}


def test_a_bearer_request_needs_no_csrf_token(app):
    token = app_state(app).identity.create_token("alice", actor="admin").token
    client = TestClient(app, base_url=BASE, headers={"Authorization": f"Bearer {token}"})
    assert client.post("/api/tracking/experiments", json={"name": "by-token"}).status_code == 201


def test_logout_needs_the_csrf_token_and_clears_the_cookie(app):
    client = TestClient(app, base_url=BASE)
    _login(client)
    forged = client.post("/logout", data={"csrf_token": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still logged in

    token = _meta_csrf(client.get("/").text)
    answer = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_pages_list_only_what_the_user_may_read(app):
    state = app_state(app)
    seen = state.tracking.create_experiment("alice-sees")
    state.tracking.create_experiment("alice-does-not-see")
    state.registry.create_model("alice-model")
    state.registry.create_model("hidden-model")
    grant = state.identity.grant
    grant("alice", Resource(ResourceKind.EXPERIMENT, str(seen.id)), Level.READ, actor="admin")
    grant("alice", Resource(ResourceKind.MODEL, "alice-model"), Level.READ, actor="admin")
    client = TestClient(app, base_url=BASE)
    _login(client)
    page = client.get("/").text
    assert "alice-sees" in page and "alice-does-not-see" not in page
    models = client.get("/models").text
    assert "alice-model" in models and "hidden-model" not in models
    assert client.get(f"/experiments/{seen.id + 1}").status_code in (403, 404)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/models", "/models"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("", "/"),
    ],
)
def test_after_login_the_browser_goes_only_to_a_page_of_this_server(target, expected):
    assert safe_next(target) == expected


def test_without_auth_there_is_no_login_and_no_secret_is_made(tmp_path: Path):
    app = create_app(Settings(home=tmp_path))
    client = TestClient(app, base_url=BASE)
    assert client.get("/", follow_redirects=False).status_code == 200
    login = client.get("/login", follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/"
    assert not (tmp_path / SECRET_FILE).exists()


def test_the_generated_secret_is_private_and_shared_by_restarts(app, tmp_path: Path):
    client = TestClient(app, base_url=BASE)
    _login(client)
    secret = tmp_path / SECRET_FILE
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    restarted = create_app(_settings(tmp_path))  # another replica or a restart on the same home
    again = TestClient(restarted, base_url=BASE, cookies=dict(client.cookies))
    assert again.get("/", follow_redirects=False).status_code == 200


def test_a_configured_secret_is_used_and_never_written(tmp_path: Path):
    shared_db = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = _settings(tmp_path, session_secret="a shared secret for every replica", db_url=shared_db)
    one, two = create_app(settings), create_app(settings.model_copy(update={"home": tmp_path / "other"}))
    app_state(one).identity.create_user("bob", password=PASSWORD)
    client = TestClient(one, base_url=BASE)
    _login(client, user="bob")
    cookies = dict(client.cookies)
    assert TestClient(two, base_url=BASE, cookies=cookies).get("/", follow_redirects=False).status_code == 200
    assert not (tmp_path / SECRET_FILE).exists()


def test_the_policy_form_is_for_managers_and_the_override_for_admins(
    app, tmp_path: Path, iris_classifier, iris
):
    state = app_state(app)
    package = tmp_path / "package"
    save_model(iris_classifier, package, input_example=iris[0].head(5))
    state.registry.register_version("gated", package, actor="admin")
    state.registry.transition("gated", 1, "staging", actor="admin")
    model = Resource(ResourceKind.MODEL, "gated")
    state.identity.grant("alice", model, Level.EDIT, actor="admin")
    alice = TestClient(app, base_url=BASE)
    _login(alice)
    page = alice.get("/models/gated").text
    assert 'id="policy-facts"' in page  # anyone who reads the model sees its policy
    assert '<form class="policy"' not in page and 'name="override"' not in page
    assert 'id="refusal-1-production"' in page

    state.identity.grant("alice", model, Level.MANAGE, actor="admin")
    page = alice.get("/models/gated").text
    assert '<form class="policy" data-model="gated">' in page and 'name="override"' not in page

    admin = TestClient(app, base_url=BASE)
    _login(admin, "admin")
    page = admin.get("/models/gated").text
    assert '<form class="policy" data-model="gated">' in page and 'id="override-1"' in page
