"""The console's services table pages through a real gateway and the real
services: Next, Previous and Last follow cursors, and show every service once,
in the order chosen, whichever way a person walks."""
from __future__ import annotations

import html
import re

import pytest

from tests.integration.test_console_limits import sign_in

SERVICES = 120  # pages of 50, 50 and 20
INACTIVE = 7  # no deadline: last in deadline order, whichever way it runs


@pytest.fixture
def fleet(db):
    db.execute("""
        INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, deadline_at, active)
        SELECT 'svc-' || lpad(n::text, 3, '0'), 'service ' || n, 60,
               CASE WHEN n > %(inactive)s THEN now() + make_interval(secs => (n * 37) %% 50) END, n > %(inactive)s
        FROM generate_series(1, %(services)s) AS n""", {"services": SERVICES, "inactive": INACTIVE})
    return db


def shown(page) -> list[str]:
    return re.findall(r'<tr id="service-\d+" data-service="([^"]+)"', page.text)


def link(page, label: str) -> str | None:
    found = re.search(r'<a href="([^"]+)"[^>]*>' + re.escape(label), page.text)
    return html.unescape(found.group(1)) if found else None


@pytest.mark.parametrize("direction, order", [
    ("asc", "deadline_at ASC NULLS LAST, service_id"),
    ("desc", "deadline_at DESC NULLS LAST, service_id DESC"),
])
def test_the_services_table_pages_by_deadline_both_ways_through_cursors(gateway, stack, fleet, direction, order):
    expected = [r["heartbeat_name"] for r in fleet.all(f"SELECT heartbeat_name FROM services ORDER BY {order}")]
    browser = sign_in(gateway.url, stack.admin_key)
    page = browser.get(f"{gateway.url}/ui/services?sort=deadline&dir={direction}", timeout=10)
    forward = [shown(page)]
    while (after := link(page, "Next ›")) is not None:
        assert "cursor=" in after
        page = browser.get(gateway.url + after, timeout=10)
        forward.append(shown(page))
    assert [len(p) for p in forward] == [50, 50, 20]
    assert sum(forward, []) == expected
    assert "Page 3 of 3" in page.text

    page = browser.get(gateway.url + link(browser.get(f"{gateway.url}/ui/services?sort=deadline&dir={direction}",
                                                      timeout=10), "Last »"), timeout=10)
    backward = [shown(page)]
    assert "Page 3 of 3" in page.text and link(page, "Next ›") is None
    while (before := link(page, "‹ Previous")) is not None:
        page = browser.get(gateway.url + before, timeout=10)
        backward.insert(0, shown(page))
    assert backward == forward
    assert "Page 1 of 3" in page.text


def test_a_page_number_alone_is_still_an_offset_and_a_broken_cursor_says_so(gateway, stack, fleet):
    browser = sign_in(gateway.url, stack.admin_key)
    everything = [r["heartbeat_name"] for r in fleet.all("SELECT heartbeat_name FROM services "
                                                         "ORDER BY lower(heartbeat_name)")]
    assert shown(browser.get(f"{gateway.url}/ui/services?page=2", timeout=10)) == everything[50:100]
    broken = browser.get(f"{gateway.url}/ui/services?cursor=nonsense", timeout=10)
    assert "cursor must be one that a search with this sort gave" in broken.text
