"""Fixtures of the end-to-end tests: ``medic up`` as a real process tree."""
from __future__ import annotations

import os

import pytest

from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.system import start_medic


@pytest.fixture
def medic_up(tmp_path, database_url):
    medic = start_medic(tmp_path, database_url)
    yield medic
    medic.stop()


@pytest.fixture(scope="module")
def chromium():
    """A launched Chromium (one per test module; each test opens its own context).

    Not per session: Playwright's sync API keeps an asyncio loop running in this
    thread until it stops, and later tests call asyncio.run()."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is required here (apt-get install chromium) and was not found")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright (the test extra) is not installed")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
