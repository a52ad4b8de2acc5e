"""Console tests: real `worldtree server` processes (tests/server/conftest.py) and Debian's
Chromium driven by Playwright for Python. Never `playwright install`: without /usr/bin/chromium
these tests skip, loudly, with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import Server, Servers, pg_servers

from worldtree.testing.stores import store_url

__all__ = ["pg_servers"]

CHROMIUM = Path("/usr/bin/chromium")
#: Screenshots of the run page land here (gitignored) for a person to look at.
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module, never per session.

    Playwright's sync API runs an event loop on this thread while it is started; kept for the
    session, every later asyncio test fails with "asyncio.run() cannot be called from a running
    event loop" (it did, in CI, for the engine and docker suites that follow these).
    """
    if not CHROMIUM.exists():
        pytest.skip(f"!!! console tests skipped: {CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


class Console:
    """One browser tab on a server's console; JavaScript errors and dialogs fail the test at teardown."""

    def __init__(self, browser: Any, server: Server) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # No dialog is ever expected: one would mean text from the server ran as script.
        self.page.on("dialog", lambda dialog: (self.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))

    def open(self, path: str = "/console") -> Any:
        self.page.goto(f"{self.server.url}{path}")
        return self.page

    def login(self, token: str) -> None:
        """Sign in through the form, as a person would (the token goes to sessionStorage)."""
        self.open("/console")
        self.page.fill("#token", token)
        self.page.click("form.login button[type=submit]")
        self.page.wait_for_selector("#who[data-role]")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console(browser: Any) -> Iterator[Any]:
    """``console(server)`` opens a tab on that server; every tab is closed and checked at the end."""
    opened: list[Console] = []

    def make(server: Server) -> Console:
        tab = Console(browser, server)
        opened.append(tab)
        return tab

    yield make
    errors = [error for tab in opened for error in tab.errors]
    for tab in opened:
        tab.close()
    assert not errors, f"JavaScript errors in the console: {errors}"


@pytest.fixture
def sqlite_servers(tmp_path: Path) -> Iterator[Servers]:
    with store_url("sqlite", tmp_path) as url:
        made = Servers(url, "sqlite", tmp_path)
        try:
            yield made
        finally:
            for server in made.started:
                server.stop()


def make_token(store: str, role: str) -> str:
    """A token on ``store`` (migrated first, as the server would), named ``console ROLE``."""
    from worldtree.app import tokens
    from worldtree.store import open_store

    opened = open_store(store)
    try:
        return tokens.create(opened, role, name=f"console {role}")[1]
    finally:
        opened.close()


def revoke_token(store: str, token_id: str) -> None:
    from worldtree.app import tokens
    from worldtree.store import open_store

    opened = open_store(store)
    try:
        tokens.revoke(opened, token_id)
    finally:
        opened.close()
