"""Fixtures of the real-browser tests: one ``starpromo serve`` with the console for the whole run (seeded, with an
admin, a viewer and a fake Telegram), Debian's Chromium driven by Playwright (its own executable, headless: no
browser download), and a signed-in page per test.

``scripts/browser-deps.sh`` installs what is missing (chromium with apt-get, axe-core with npm into .cache/axe);
``make test`` runs it first, and the first fixture here runs it again (a no-op then), so
``.venv/bin/pytest tests/browser`` works on its own too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, sync_playwright

from entrypoints.cli.demo_history import HISTORY_CAMPAIGN
from tests.browser.pages import ROOT, VIEWPORT, ConsolePage, console_pages, sign_in
from tests.browser.seed import Seeded, seed
from tests.browser.server import ADMIN, VIEWER, ConsoleServer
from tests.fakes.bot_api import FakeBotApi


@attrs.frozen
class BrowserDeps:
    chromium: str
    axe_js: Path


@attrs.frozen
class Console:
    server: ConsoleServer
    seeded: Seeded

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def browser_deps() -> BrowserDeps:
    proc = subprocess.run([str(ROOT / "scripts" / "browser-deps.sh")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"scripts/browser-deps.sh failed:\n{proc.stderr}"
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return BrowserDeps(values["STARPROMO_CHROMIUM"], Path(values["STARPROMO_AXE_JS"]))


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with FakeBotApi() as bot_api:
        server = ConsoleServer(tmp_path_factory.mktemp("console"), bot_api)
        server.prepare()
        seeded = seed(server)
        server.start()
        try:
            yield Console(server, seeded)
        finally:
            server.stop()
    log = server.log()
    assert '"status": 500' not in log and "Traceback" not in log, f"the server failed a request:\n{log[-5000:]}"


@pytest.fixture(scope="session")
def browser(browser_deps: BrowserDeps) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=browser_deps.chromium, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """A browser context (its own cookies) with every console answer of 500 or more it received recorded."""

    def __init__(self, browser: Browser, console: Console) -> None:
        self.context: BrowserContext = browser.new_context(viewport=VIEWPORT, base_url=console.url,
                                                           accept_downloads=True)
        self.server_errors: list[str] = []
        self.context.on("response", self._check)
        self.page: Page = self.context.new_page()

    def _check(self, response: Response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.request.method} {response.url} -> {response.status}")

    def close(self) -> None:
        self.context.close()
        assert not self.server_errors, self.server_errors


@pytest.fixture
def anonymous(browser: Browser, console: Console) -> Iterator[Page]:
    """A page of a browser nobody signed in on."""
    session = Session(browser, console)
    yield session.page
    session.close()


def _signed_in(browser: Browser, console: Console, name: str) -> Iterator[Page]:
    session = Session(browser, console)
    sign_in(session.page, name)
    assert session.page.url.rstrip("/").endswith("/ops"), f"{name} did not reach the overview: {session.page.url}"
    yield session.page
    session.close()


@pytest.fixture
def admin(browser: Browser, console: Console) -> Iterator[Page]:
    """A page signed in as the admin ``alice``."""
    yield from _signed_in(browser, console, ADMIN)


@pytest.fixture
def viewer(browser: Browser, console: Console) -> Iterator[Page]:
    """A page signed in as the viewer ``victor``."""
    yield from _signed_in(browser, console, VIEWER)


@pytest.fixture(scope="session")
def spring_code_id(console: Console) -> int:
    """The id of the seeded "Spring sale" campaign's one code."""
    ((code_id,),) = console.server.query("SELECT id FROM promo_codes WHERE campaign_id = ?",
                                         (console.seeded.spring_campaign_id,))
    assert isinstance(code_id, int)
    return code_id


@pytest.fixture(scope="session")
def every_page(console: Console, spring_code_id: int) -> list[ConsolePage]:
    """Every page behind the sign-in: the campaign page of the demo history's giveaway (days of attempts and
    payments for its charts), the "Spring sale" code (its redemptions) and the page of a user with a paid purchase
    nobody changes."""
    ((campaign_id,),) = console.server.query("SELECT id FROM promo_campaigns WHERE name = ?", (HISTORY_CAMPAIGN,))
    assert isinstance(campaign_id, int)
    return console_pages(campaign_id, HISTORY_CAMPAIGN, spring_code_id, console.seeded.bystander)
