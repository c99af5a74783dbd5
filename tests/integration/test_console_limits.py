"""The console's rate limits, through a real gateway in front of the real services:
page views count in a class of their own, so a person browsing does not use up
the key's management budget (20 a minute by default) and meet 429s."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.http import HttpClient
from tests.support.stack import start_gateway

CONSOLE_LIMIT = 5


@pytest.fixture
def console_gateway(stack):
    server = start_gateway(stack, rate_limit_console_per_minute=CONSOLE_LIMIT)
    yield server
    server.stop()


def sign_in(url: str, key: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(url + "/ui/login", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    signed_in = browser.post(url + "/ui/login", data={"key": key, "csrf": csrf, "next": "/ui/"},
                             allow_redirects=False, timeout=10)
    assert signed_in.status_code == 303, signed_in.text
    return browser


def test_console_pages_have_their_own_limit_and_leave_the_management_budget_alone(console_gateway, stack):
    admin = HttpClient(console_gateway.url, stack.admin_key)
    created = admin.post("/v2/api-keys", json={"name": "dashboard", "scopes": ["read"],
                                               "rate_limits": {"management_per_minute": 2}})
    assert created.status_code == 201, created.text
    key = created.json()["results"]["key"]

    browser = sign_in(console_gateway.url, key)  # the sign-in: 1 of the 2 management requests
    # More page views than the key's management limit: all served.
    for _ in range(CONSOLE_LIMIT):
        page = browser.get(console_gateway.url + "/ui/deliveries", timeout=10)
        assert page.status_code == 200, page.text
    refused = browser.get(console_gateway.url + "/ui/alerts", timeout=10)
    assert refused.status_code == 429
    assert f"rate limit of {CONSOLE_LIMIT} console requests per minute" in refused.text

    # The pages used none of the management budget: one request of it is left.
    api = HttpClient(console_gateway.url, key)
    assert api.get("/v2/teams").status_code == 200
    assert api.get("/v2/teams").status_code == 429


def test_a_key_with_a_higher_management_limit_keeps_it_for_console_pages(console_gateway, stack):
    admin = HttpClient(console_gateway.url, stack.admin_key)
    created = admin.post("/v2/api-keys", json={"name": "wallboard", "scopes": ["read"],
                                               "rate_limits": {"management_per_minute": CONSOLE_LIMIT + 3}})
    key = created.json()["results"]["key"]
    browser = sign_in(console_gateway.url, key)
    statuses = [browser.get(console_gateway.url + "/ui/deliveries", timeout=10).status_code
                for _ in range(CONSOLE_LIMIT + 4)]
    assert statuses == [200] * (CONSOLE_LIMIT + 3) + [429]
