"""The change history in the console, in a real browser against ``medic up``:
the audit page with the API's filters and messages (and its CSV), a service's
history and snapshots on its page, restoring a snapshot, undoing a bulk change,
and a read key that can look but not undo."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_console import api, expect, medic, person  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


def test_the_audit_page_filters_and_shows_a_console_mute_with_its_actor(person, medic, api, expect):
    api.register("audit-muted")
    api.register("audit-untouched")
    person.login(medic.admin_key)
    page = person.page
    actor = page.locator(".who > span").first.inner_text().split(" (")[0]  # the signed-in key's name
    assert actor
    page.goto("/ui/services?q=audit-muted")
    page.get_by_role("button", name="Mute audit-muted").click()
    expect(page.get_by_role("button", name="Unmute audit-muted")).to_be_visible()

    page.get_by_role("link", name="Audit", exact=True).click()
    person.fill({"Heartbeat name": "audit-muted", "Change": "mute"}, submit="Filter")
    expect(page).to_have_url(re.compile(r"/ui/audit\?.*heartbeat_name=audit-muted.*action_type=mute"))
    rows = page.locator("#audit-events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".actor")).to_have_text(actor)
    expect(rows.first).to_contain_text("muted")  # before and after: muted false -> true
    expect(page.locator("#audit-total")).to_contain_text("1 change match")

    person.fill({"Who": "someone-else"}, submit="Filter")
    expect(page.locator(".empty")).to_have_text("No change matches.")

    # The CSV export has the same filters.
    page.goto("/ui/audit?heartbeat_name=audit-muted&action_type=mute")
    href = page.locator("#audit-csv").get_attribute("href")
    assert "heartbeat_name=audit-muted" in href and "action_type=mute" in href
    exported = person.context.request.get(person.base_url + href)
    assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text().strip().splitlines()
    assert lines[0].startswith("log_id,execution_id,action_type,actor")
    assert len(lines) == 2 and f",mute,{actor}," in lines[1]

    # Bad filter values: the API's own messages, and what was typed stays.
    response = page.goto("/ui/audit?start_date=yesterday")
    assert response.status == 400
    expect(page.locator("#audit-error")).to_have_text(
        "Invalid start_date format. Use ISO format (e.g., 2026-01-01T00:00:00Z)")
    expect(page.get_by_label("From")).to_have_value("yesterday")
    person.fill({"From": "", "Change": "muted"}, submit="Filter")
    expect(page.locator("#audit-error")).to_contain_text("Invalid action_type. Must be one of: register,")
    page.goto("/ui/audit?service_id=abc")
    expect(page.locator("#audit-error")).to_have_text("Invalid 'service_id' parameter")


def test_restoring_a_snapshot_from_the_service_page_puts_the_old_interval_back(person, medic, api, expect):
    service = api.register("restore-me", interval=60)
    person.login(medic.admin_key)
    page = person.page
    page.goto(f"/ui/services/{service['service_id']}")
    expect(page.locator("#service-snapshots")).to_have_count(0)  # nothing changed yet
    person.fill({"Alert interval (seconds)": "120"}, submit="Save settings")
    expect(page.locator(".flash")).to_have_text("Settings saved.")
    assert api.service("restore-me")["alert_interval_seconds"] == 120

    snapshot = page.locator("#service-snapshots tbody tr").first
    expect(snapshot).to_contain_text("every 60 s")
    expect(snapshot).to_contain_text("edit")
    snapshot_id = snapshot.get_attribute("id").removeprefix("snapshot-")
    snapshot.get_by_role("button", name=f"Restore snapshot {snapshot_id}").click()
    expect(page.locator(".flash")).to_contain_text("restore-me")
    assert api.service("restore-me")["alert_interval_seconds"] == 60
    expect(page.get_by_label("Alert interval (seconds)")).to_have_value("60")

    history = page.locator("#service-history tbody tr")
    expect(history.first).to_have_attribute("data-action", "restore")  # newest first
    expect(history.first).to_contain_text("120 → 60")
    expect(page.locator(f"#snapshot-{snapshot_id}")).to_contain_text("restored")
    # The restore took a snapshot of its own: it can be undone in turn.
    expect(page.locator("#service-snapshots tbody tr").first).to_contain_text("every 120 s")


def test_a_bulk_change_found_in_the_audit_log_is_undone_from_there(person, medic, api, expect):
    ids = [api.register(name)["service_id"] for name in ("audit-bulk-a", "audit-bulk-b")]
    api.call("POST", "/v2/services/bulk", json={"service_ids": ids, "active": False})
    person.login(medic.admin_key)
    page = person.page
    page.goto("/ui/audit?heartbeat_name=audit-bulk-a&action_type=bulk_edit")
    page.get_by_role("link", name="bulk change").click()
    expect(page).to_have_url(re.compile(r"/ui/audit\?bulk_id=[\w-]+$"))
    expect(page.locator("#audit-events tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Undo this bulk change").click()
    expect(page.locator(".flash")).to_have_text("Undid the bulk change: 2 services put back as they were.")
    assert [api.service(n)["active"] for n in ("audit-bulk-a", "audit-bulk-b")] == [1, 1]


def test_a_read_key_sees_history_without_restore_buttons_and_its_forged_restore_gets_403(person, api, expect):
    service = api.register("read-history")
    api.call("POST", "/service/read-history", json={"alert_interval_seconds": 300})
    [snapshot] = api.call("GET", f"/v2/snapshots?service_id={service['service_id']}")["entries"]
    person.login(api.key("history-viewer", ["read"]))
    page = person.page
    page.goto(f"/ui/services/{service['service_id']}")
    expect(page.locator(f"#snapshot-{snapshot['snapshot_id']}")).to_contain_text("every 60 s")
    assert page.get_by_role("button", name=re.compile("Restore|Undo")).count() == 0
    page.goto("/ui/audit")
    expect(page.locator("#audit-events")).to_be_visible()

    forged = person.post(f"/ui/snapshots/{snapshot['snapshot_id']}/restore", {"csrf": person.csrf()})
    assert forged.status == 403
    assert "lacks the `write` scope" in forged.text()
    assert api.service("read-history")["alert_interval_seconds"] == 300
