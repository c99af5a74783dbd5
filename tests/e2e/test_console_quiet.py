"""The console's quiet hours in a real browser against ``medic up``: maintenance
windows listed and created, acknowledge and mute with a reason, and each
notification that was not sent shown with its reason."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.test_console import api, expect, medic, person  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


def local_input(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M")


def test_windows_acknowledgements_mutes_and_skip_reasons_in_the_console(person, medic, api, expect):
    person.login(medic.admin_key)
    page = person.page

    now = dt.datetime.now(dt.timezone.utc)
    page.goto("/ui/windows")
    page.get_by_label("For").select_option("glob")
    person.fill({"Name pattern (scope glob)": "console-quiet*",
                 "Starts (UTC, one-off)": local_input(now - dt.timedelta(minutes=2)),
                 "Ends (UTC, one-off)": local_input(now + dt.timedelta(hours=1)),
                 "Reason": "database upgrade"}, submit="Create window")
    expect(page.locator(".flash")).to_have_text("Maintenance window created.")
    expect(page.locator("#windows")).to_contain_text("database upgrade")
    expect(page.locator("#windows")).to_contain_text("open")
    page.get_by_text("Show only the windows open now").click()
    expect(page.locator("#windows")).to_contain_text("database upgrade")

    # A bad window stays in the form with the reason beside its field.
    page.goto("/ui/windows")
    page.get_by_label("Kind").select_option("recurring")
    page.get_by_label("For").select_option("all")
    person.fill({"Cron (recurring)": "0 3 * * sun", "Lasts (minutes, recurring)": "30",
                 "Time zone (recurring)": "Mars/Olympus", "Reason": "weekly"}, submit="Create window")
    expect(page.locator(".field-error")).to_contain_text("timezone")
    expect(page.get_by_label("Cron (recurring)")).to_have_value("0 3 * * sun")

    # A service the window covers goes silent: recorded, not sent, and the page says why.
    service = api.register("console-quiet", interval=1)
    api.beat("console-quiet")
    def alert_open():
        return api.call("GET", "/alerts?active=1")
    import time
    deadline = time.monotonic() + 20
    while not alert_open():
        assert time.monotonic() < deadline, "the alert did not open"
        time.sleep(0.2)
    [alert] = alert_open()
    page.goto(f"/ui/services/{service['service_id']}")
    expect(page.locator("#h-skips + table")).to_contain_text("window")

    page.get_by_label("Mute, because").fill("noisy during the upgrade")
    page.get_by_label("Until").select_option("recovery")
    page.get_by_role("button", name="Mute", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Muted until it recovers.")
    expect(page.locator("#mute-state")).to_contain_text("noisy during the upgrade")
    expect(page.locator("#mute-state")).to_contain_text("until it recovers")
    assert api.service("console-quiet")["muted"] == 1

    page.goto("/ui/alerts?status=active")
    page.get_by_role("button", name="Acknowledge").first.click()
    expect(page.locator(".flash")).to_have_text(f"Alert #{alert['alert_id']} acknowledged: no more reminders.")
    expect(page.locator("#alerts")).to_contain_text("by ")

    page.goto(f"/ui/deliveries?alert={alert['alert_id']}")
    expect(page.locator("#skips")).to_contain_text("trigger")
    expect(page.locator("#skips")).to_contain_text("window")


def test_a_window_announcement_is_listed_as_the_window_s_not_an_alert_s(person, medic, api, expect):
    from tests.support.receivers import WebhookReceiver

    with WebhookReceiver() as hook:
        service = api.register("console-announced", interval=300)
        api.beat("console-announced")
        api.call("POST", "/v2/notification-targets", json={
            "service_id": service["service_id"], "type": "webhook", "config": {"url": f"{hook.url}/announced"}})
        now = dt.datetime.now(dt.timezone.utc)
        api.call("POST", "/v2/maintenance-windows", json={
            "scope": "service", "service_id": service["service_id"], "reason": "disk swap", "announce": True,
            "starts_at": (now - dt.timedelta(seconds=1)).isoformat(), "ends_at": (now + dt.timedelta(hours=1)).isoformat()})
        [started] = hook.wait_for(1, timeout=30)
        assert started.json()["type"] == "window.started"

    person.login(medic.admin_key)
    person.page.goto("/ui/deliveries?service=console-announced")
    row = person.page.locator("table.deliveries tbody tr").first
    expect(row).to_contain_text("maintenance window")
    expect(row).not_to_contain_text("alert #")
