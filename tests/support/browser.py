"""A real browser for the console's tests: Debian's Chromium driven by Playwright
(the ``chromium`` fixture of tests/e2e/conftest.py launches it).

Playwright's own browser downloads are never used (``executable_path``); the
flags keep Chromium from opening connections of its own (updates, sync,
QUIC), which a closed network refuses.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    explicit = os.environ.get("MEDIC_TEST_CHROMIUM")
    for candidate in ((explicit,) if explicit else CHROMIUM_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


class ConsoleUser:
    """One person at the console: a browser context of their own (cookies) on the gateway."""

    def __init__(self, browser, base_url: str, color_scheme: str = "light", timezone_id: str = "UTC"):
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url, color_scheme=color_scheme, timezone_id=timezone_id,
                                           locale="en-GB", viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(15000)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def login(self, key: str) -> None:
        self.page.goto("/ui/login")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/ui/")

    def fill(self, fields: dict[str, str], submit: str | None = None) -> None:
        """Types each value into the field labelled with its key, then clicks the ``submit`` button."""
        for label, value in fields.items():
            self.page.get_by_label(label, exact=True).fill(value)
        if submit:
            self.page.get_by_role("button", name=submit).click()

    def bulk(self, names: list[str], action: str) -> None:
        """Selects the services ``names`` in the services table and applies ``action`` to them."""
        for name in names:
            self.page.get_by_label(f"Select {name}").check()
        self.page.get_by_label("With the selected").select_option(action)
        self.page.get_by_role("button", name="Apply").click()

    def csrf(self) -> str:
        return self.page.locator("input[name=csrf]").first.get_attribute("value")

    def post(self, path: str, form: dict[str, str]):
        """A POST with this person's cookies, as a script forging a request would send it."""
        return self.context.request.post(self.base_url + path, form=form, max_redirects=0)

    def close(self) -> None:
        self.context.close()


def screenshot_folder(default: Path) -> Path:
    """Where screenshots go: MEDIC_CONSOLE_SCREENSHOTS (docs/console refreshes the README's), else ``default``."""
    folder = Path(os.environ.get("MEDIC_CONSOLE_SCREENSHOTS") or default)
    if not folder.is_absolute():
        folder = REPO / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def take_screenshots(browser, base_url: str, key: str, shots: dict[str, str], folder: Path) -> None:
    """``console-<name>-<light|dark>.png`` of each page in ``shots``, as a person with ``key`` sees it."""
    for scheme in ("light", "dark"):
        user = ConsoleUser(browser, base_url, color_scheme=scheme)
        try:
            user.login(key)
            for name, path in shots.items():
                user.page.goto(path)
                user.page.wait_for_load_state("networkidle")
                target = folder / f"console-{name}-{scheme}.png"
                user.page.screenshot(path=str(target), full_page=False)
                assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            background = user.page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert (background == "rgb(17, 18, 22)") == (scheme == "dark")  # dark follows the system
        finally:
            user.close()
