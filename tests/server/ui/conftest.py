"""A real `quayside server` with seeded data, and Debian's Chromium driven by Playwright.

Screenshots go to ``test-output/ui/`` at the repository root (``QUAYSIDE_UI_SCREENSHOTS``
picks another folder); Chromium is ``/usr/bin/chromium`` (``QUAYSIDE_TEST_CHROMIUM``),
which ``scripts/browser.sh`` installs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quayside import RegistryClient
from quayside.config import Settings
from quayside.tracking.client import Client
from tests.db.fixtures import Server
from tests.server.ui.seed import MlflowSeeded, Seeded, seed, seed_mlflow

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = Path(os.environ.get("QUAYSIDE_UI_SCREENSHOTS", REPO / "test-output" / "ui"))
CHROMIUM = os.environ.get("QUAYSIDE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class UI:
    """The seeded server and what was put in it."""

    def __init__(self, server: Server, data: Seeded, mlflow: MlflowSeeded, registry: RegistryClient) -> None:
        self.server = server
        self.data = data
        self.mlflow = mlflow
        self.registry = registry
        """A client of the server's registry, to set up and re-read what a test does through the pages."""

    @property
    def url(self) -> str:
        return self.server.url

    def run_id(self, name: str) -> str:
        return self.data.runs[name].id


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Iterator[UI]:
    home = tmp_path_factory.mktemp("ui-server")
    server = Server(home, f"sqlite:///{home / 'quayside.db'}").start()
    try:
        settings = Settings(home=tmp_path_factory.mktemp("ui-client"), tracking_uri=server.url)
        registry = RegistryClient(settings=settings)
        data = seed(
            Client(settings=settings),
            registry,
            iris_classifier,
            iris[0].head(10),
            tmp_path_factory.mktemp("ui-seed"),
        )
        yield UI(server, data, seed_mlflow(server.url), registry)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `bash scripts/browser.sh` (or set QUAYSIDE_TEST_CHROMIUM)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A browser tab that records uncaught script errors and any request leaving the machine."""

    def __init__(self, page: Any, test_name: str) -> None:
        self.page = page
        self.test_name = test_name
        self.script_errors: list[str] = []
        self.outside_requests: list[str] = []

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}--{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _open_page(browser: Any, request: pytest.FixtureRequest, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)
    tab = Page(context.new_page(), request.node.name)

    def only_this_machine(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
            route.continue_()
        else:
            tab.outside_requests.append(url)
            route.abort()

    context.route("**/*", only_this_machine)
    tab.page.on("pageerror", lambda error: tab.script_errors.append(str(error)))
    yield tab
    context.close()
    assert tab.script_errors == [], "the page's scripts failed"
    assert tab.outside_requests == [], "the UI must work offline"


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A desktop-sized tab (1280 px wide)."""
    yield from _open_page(browser, request, {"width": 1280, "height": 900})


@pytest.fixture
def phone(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A phone-sized tab (390 px wide)."""
    yield from _open_page(browser, request, {"width": 390, "height": 844})
