"""Logging in to the web UI in a real browser (Debian's Chromium via Playwright) against ``quayside server --auth``.

Users are made through the identity store on the server's database; the data through
Quayside's client with the admin's token. A second local server plays another site: its
page posts forms to Quayside with the user's cookie attached (ports do not make a site, so
``SameSite`` lets the cookie go), and only the CSRF check stands in the way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from quayside import RegistryClient
from quayside.config import Settings
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.tracking.client import Client
from tests.server.auth_fixtures import PASSWORD, AuthServer, start_auth_server
from tests.server.ui.conftest import Page

VISIBLE = "login-visible"
HIDDEN = "login-hidden"
MODEL = "login-iris"


@dataclass
class Seeded:
    auth: AuthServer
    admin: Client
    registry: RegistryClient
    visible_id: int


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Iterator[Seeded]:
    auth = start_auth_server(tmp_path_factory.mktemp("login-ui"), default_permission="none")
    try:
        auth.add_user("alice")
        settings = Settings(
            home=tmp_path_factory.mktemp("login-client"), tracking_uri=auth.url, token=auth.tokens["admin"]
        )
        admin, registry = Client(settings=settings), RegistryClient(settings=settings)
        run = admin.create_run(VISIBLE, run_name="seen")
        admin.create_run(HIDDEN, run_name="unseen")
        admin.log_model(run.id, iris_classifier, "model", input_example=iris[0].head(5))
        registry.register_model(f"runs:/{run.id}/model", MODEL, reason="first cut")
        visible_id = admin.get_experiment(VISIBLE).id
        auth.grant("alice", Resource(ResourceKind.EXPERIMENT, str(visible_id)), Level.READ)
        yield Seeded(auth, admin, registry, visible_id)
    finally:
        auth.stop()


def _log_in(tab: Page, url: str, user: str, password: str = PASSWORD) -> None:
    p = tab.page
    p.goto(url + "/")
    expect(p.get_by_role("heading", level=1)).to_have_text("Log in")
    p.get_by_label("Username").fill(user)
    p.get_by_label("Password").fill(password)
    p.get_by_role("button", name="Log in").click()


def _stage(seeded: Seeded) -> str:
    return seeded.registry.get_version(MODEL, 1).stage


def test_log_in_see_only_permitted_experiments_and_log_out(seeded: Seeded, page: Page):
    p, url = page.page, seeded.auth.url
    _log_in(page, url, "alice", "not the password")
    expect(p.locator("#login-error")).to_have_text("wrong user name or password")
    page.shot("wrong-password")

    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Log in").click()
    expect(p.get_by_role("heading", level=1)).to_have_text("Experiments")
    expect(p.locator("#session-user")).to_have_text("alice")
    expect(p.get_by_role("link", name=VISIBLE)).to_be_visible()
    expect(p.get_by_role("link", name=HIDDEN)).to_have_count(0)
    page.shot("experiments")
    assert "HttpOnly" not in p.evaluate("document.cookie") and p.evaluate("document.cookie") == ""

    p.get_by_role("button", name="Log out").click()
    expect(p.get_by_role("heading", level=1)).to_have_text("Log in")
    p.goto(url + "/")
    expect(p).to_have_url(f"{url}/login?next=%2F")


def test_a_stage_change_refused_for_a_read_only_user_shows_the_apis_message(seeded: Seeded, page: Page):
    p, url = page.page, seeded.auth.url
    model = Resource(ResourceKind.MODEL, MODEL)
    seeded.auth.grant("alice", model, Level.EDIT)
    _log_in(page, url, "alice")
    p.goto(f"{url}/models/{MODEL}")
    row = p.locator("#version-1")
    expect(row.get_by_role("button", name="Move…")).to_be_enabled()
    expect(row.locator("option[value=production]")).to_be_disabled()  # production needs manage

    seeded.auth.grant("alice", model, Level.READ)  # taken away while the page is open
    row.get_by_label("Move v1 to").select_option("staging")
    row.get_by_role("button", name="Move…").click()
    p.get_by_label("Reason (kept in the audit log)").fill("should not happen")
    p.get_by_role("button", name="Confirm").click()
    error = p.locator("#confirm-error")
    expect(error).to_be_visible()
    with seeded.auth.api("alice") as api:  # the same request with alice's token: the same refusal
        answer = api.post(f"/api/registry/models/{MODEL}/versions/1/transition", json={"stage": "staging"})
    assert answer.status_code == 403
    expect(error).to_have_text(answer.json()["error"]["message"])
    expect(error).to_contain_text("'alice' has only read permission")
    page.shot("refused")
    assert _stage(seeded) == "candidate"

    p.reload()
    expect(p.locator("#version-1").get_by_role("button", name="Move…")).to_be_disabled()
    page.shot("read-only")


ATTACK = """<!DOCTYPE html>
<html><body>
<form id="move" method="post" enctype="text/plain" target="move-frame"
      action="{url}/api/registry/models/{model}/versions/1/transition">
  <input name='{{"stage": "staging", "reason": "csrf", "x": "' value='"}}'>
</form>
<form id="logout" method="post" target="logout-frame" action="{url}/logout"></form>
<iframe name="move-frame" id="move-frame"></iframe><iframe name="logout-frame" id="logout-frame"></iframe>
<script>document.getElementById("move").submit(); document.getElementById("logout").submit();</script>
</body></html>
"""


@pytest.fixture
def other_site(seeded: Seeded) -> Iterator[str]:
    """Another origin on this machine whose page auto-submits forms to the Quayside server."""
    body = ATTACK.format(url=seeded.auth.url, model=MODEL).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_cross_site_form_post_without_the_csrf_token_changes_nothing(
    seeded: Seeded, page: Page, other_site: str
):
    p, url = page.page, seeded.auth.url
    _log_in(page, url, "admin")  # may do anything: only the missing token stops the forms
    expect(p.locator("#session-user")).to_have_text("admin")
    before = _stage(seeded)
    transition = f"{url}/api/registry/models/{MODEL}/versions/1/transition"

    def posted(target: str):
        return lambda r: r.url == target and r.request.method == "POST"

    with p.expect_response(posted(transition)) as moved, p.expect_response(posted(f"{url}/logout")) as logout:
        p.goto(other_site + "/")
    page.shot("other-site")
    assert moved.value.status in (403, 415)  # a text/plain body is refused before the CSRF check
    # 403, not a redirect: the cookie came along (a logout without a session just redirects), and the
    # form body passed the type check; the missing CSRF token is what refused it.
    assert logout.value.status == 403
    assert _stage(seeded) == before == "candidate"
    history = seeded.registry.history(MODEL, 1)
    assert all(entry.reason != "csrf" for entry in history)

    p.goto(url + "/")  # the forged logout did not log the user out either
    expect(p.locator("#session-user")).to_have_text("admin")
