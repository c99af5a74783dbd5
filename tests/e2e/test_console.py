"""The web console in a real browser (Chromium via Playwright) against ``medic up``
started as real processes: what a person at the console sees and can do."""
from __future__ import annotations

import os
import re
import signal
import time

import pytest
import requests

from tests.support.browser import ConsoleUser, screenshot_folder, take_screenshots
from tests.support.databases import create_test_database, drop_test_database, with_database
from tests.support.receivers import Reply, WebhookReceiver
from tests.support.system import start_medic

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def medic(tmp_path_factory, pg_server_url, template_database):
    """One ``medic up`` for the module (starting one costs seconds): the auth cache
    lasts 1 s so a revocation shows at once; webhooks may go to this machine."""
    name = create_test_database(pg_server_url, template_database)
    up = start_medic(tmp_path_factory.mktemp("console"), with_database(pg_server_url, name), extra_env={
        "MEDIC_AUTH_CACHE_TTL_SECONDS": "1", "MEDIC_WEBHOOK_ALLOW_PRIVATE": "true",
        "MEDIC_RPC_TIMEOUT_SECONDS": "2"})
    yield up
    up.stop()
    drop_test_database(pg_server_url, name)


@pytest.fixture
def expect():
    from playwright.sync_api import expect as playwright_expect
    playwright_expect.set_options(timeout=20000)
    return playwright_expect


class Api:
    def __init__(self, medic):
        self.url = medic.gateway_url
        self.headers = medic.auth_header

    def call(self, method: str, path: str, key: str | None = None, expect_status=(200, 201), **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else self.headers
        response = requests.request(method, self.url + path, headers=headers, timeout=10, **kw)
        expected = (expect_status,) if isinstance(expect_status, int) else expect_status
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json().get("results") if response.content else None

    def register(self, name: str, interval: int = 60) -> dict:
        return self.call("POST", "/service", json={"heartbeat_name": name, "service_name": name,
                                                   "alert_interval_seconds": interval})[0]

    def service(self, name: str) -> dict:
        return self.call("GET", f"/service/{name}")[0]

    def beat(self, name: str, status: str = "UP") -> None:
        self.call("POST", "/heartbeat", expect_status=201, json={"heartbeat_name": name, "status": status})

    def key(self, name: str, scopes: list[str]) -> str:
        return self.call("POST", "/v2/api-keys", json={"name": name, "scopes": scopes})["key"]


@pytest.fixture
def api(medic):
    return Api(medic)


@pytest.fixture
def person(chromium, medic):
    user = ConsoleUser(chromium, medic.gateway_url)
    yield user
    user.close()


def test_login_register_then_new_up_down_and_an_alert_live_without_reload(person, medic, api, expect):
    page = person.page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/login"))  # no session: sent to sign in
    person.login(medic.admin_key)

    page.goto("/ui/services")
    page.get_by_text("Register a service").click()
    person.fill({"Heartbeat name": "checkout-api", "Service name": "Checkout API",
                 "Alert interval (seconds)": "soon"}, submit="Register")
    # Bad input: the message beside the field, and nothing typed is lost.
    expect(page.locator("#e-alert_interval_seconds")).to_have_text("alert_interval_seconds must be a whole number")
    expect(page.get_by_label("Heartbeat name")).to_have_value("checkout-api")
    expect(page.get_by_label("Service name")).to_have_value("Checkout API")
    # A value the service refuses gets the API's own message, beside its field.
    person.fill({"Alert interval (seconds)": "0"}, submit="Register")
    expect(page.locator("#e-alert_interval_seconds")).to_have_text(
        "alert_interval_seconds must be between 1 and 31536000")  # the contract's limits
    expect(page.get_by_label("Service name")).to_have_value("Checkout API")

    person.fill({"Alert interval (seconds)": "10"}, submit="Register")
    expect(page).to_have_url(re.compile(r"/ui/services/\d+$"))
    expect(page.locator(".flash")).to_have_text("Registered checkout-api.")
    expect(page.locator("#service-state")).to_contain_text("new")

    page.evaluate("window.__notReloaded = true")
    api.beat("checkout-api")
    expect(page.locator("#service-state")).to_contain_text("up")
    assert page.evaluate("window.__notReloaded") is True

    page.goto("/ui/")
    page.evaluate("window.__notReloaded = true")
    # No more heartbeats: 10 s later the service is overdue; the overview shows it on its own.
    alert_row = page.locator("#active-alerts tr", has_text="checkout-api")
    expect(alert_row).to_be_visible(timeout=30000)
    expect(alert_row).to_contain_text("missed heartbeats")
    expect(page.locator("[data-count=down] .count-n")).to_have_text("1")
    expect(page.locator("#changes")).to_contain_text("checkout-api")
    assert page.evaluate("window.__notReloaded") is True


def test_mute_retry_a_failed_delivery_create_and_revoke_a_key_then_log_out(person, medic, api, expect):
    with WebhookReceiver(default=Reply(400, "bad payload from the receiver")) as receiver:
        service = api.register("billing-worker", interval=1)
        api.call("POST", "/v2/notification-targets", json={
            "service_id": service["service_id"], "type": "webhook", "config": {"url": receiver.url}})
        api.beat("billing-worker")
        receiver.wait_for(1, timeout=30)  # the TRIGGER, refused with 400: failed for good
        person.login(medic.admin_key)

        page = person.page
        page.goto("/ui/services?q=billing")
        page.get_by_role("button", name="Mute billing-worker").click()
        expect(page.get_by_role("button", name="Unmute billing-worker")).to_be_visible()
        expect(page.locator("#service-%d .state" % service["service_id"])).to_contain_text("muted")
        assert api.service("billing-worker")["muted"] == 1

        page.goto("/ui/deliveries?status=failed&service=billing-worker")
        row = page.locator("tr[data-status=failed]").first
        expect(row).to_contain_text("HTTP 400")
        row.get_by_text("Error and response").click()
        expect(row.locator("pre.body")).to_have_text("bad payload from the receiver")
        delivery_id = row.get_attribute("id").removeprefix("delivery-")
        row.get_by_role("button", name=f"Retry delivery {delivery_id}").click()
        expect(page.locator(".flash")).to_have_text(f"Delivery {delivery_id} queued again.")
        receiver.wait_for(2, timeout=30)  # sent again

    page.goto("/ui/admin")
    page.get_by_label("New key name").fill("ci-reader")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    assert key.startswith("mdk_")
    api.call("GET", "/service", key=key)  # the shown key works
    page.goto("/ui/admin")
    assert key not in page.content()  # shown once only
    expect(page.locator("#key-table")).to_contain_text("ci-reader")

    page.get_by_role("button", name="Revoke key ci-reader").click()
    expect(page.locator(".flash")).to_contain_text("revoked")
    deadline = time.monotonic() + 10
    while requests.get(medic.gateway_url + "/service", headers={"Authorization": f"Bearer {key}"},
                       timeout=5).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    expect(page.locator(".flash")).to_have_text("You are signed out.")
    page.goto("/ui/services")
    expect(page).to_have_url(re.compile(r"/ui/login"))


def test_a_read_key_sees_no_write_buttons_and_its_forged_post_gets_403(person, api, expect):
    service = api.register("read-only-view")
    person.login(api.key("viewer", ["read"]))
    page = person.page

    page.goto("/ui/services?q=read-only-view")
    expect(page.locator("tr[data-service=read-only-view]")).to_be_visible()
    assert page.locator("button").filter(has_text=re.compile("Mute|Unmute|Apply|Register")).count() == 0
    page.goto(f"/ui/services/{service['service_id']}")
    expect(page.locator("#service-state")).to_contain_text("new")
    assert page.get_by_role("button", name="Save settings").count() == 0
    assert page.get_by_role("button", name="Mute").count() == 0
    assert page.get_by_role("link", name="Admin").count() == 0

    forged = person.post(f"/ui/services/{service['service_id']}/mute", {"csrf": person.csrf(), "muted": "true"})
    assert forged.status == 403
    assert "lacks the `write` scope" in forged.text()
    assert api.service("read-only-view")["muted"] == 0

    response = page.goto("/ui/admin")
    assert response.status == 403
    expect(page.locator("h1")).to_contain_text("Not allowed")


def test_a_form_post_without_the_csrf_token_is_refused(person, medic, api, expect):
    service = api.register("csrf-target")
    person.login(medic.admin_key)
    path = f"/ui/services/{service['service_id']}/mute"

    missing = person.post(path, {"muted": "true"})
    wrong = person.post(path, {"muted": "true", "csrf": "not-the-token"})
    assert (missing.status, wrong.status) == (403, 403)
    assert "CSRF" in missing.text()
    assert api.service("csrf-target")["muted"] == 0

    assert person.post(path, {"muted": "true", "csrf": person.csrf()}).status == 303
    assert api.service("csrf-target")["muted"] == 1


def test_a_revoked_key_is_logged_out_on_its_next_request(person, api, expect):
    key = api.key("short-lived", ["read"])
    person.login(key)
    person.page.goto("/ui/services")
    expect(person.page.locator("h1")).to_have_text("Services")

    api.call("DELETE", f"/v2/api-keys/{key.split('_')[1]}")
    time.sleep(1.5)  # the gateway's authorization cache lasts 1 s in this system
    person.page.goto("/ui/alerts")
    expect(person.page).to_have_url(re.compile(r"/ui/login\?.*ended=1"))
    expect(person.page.locator(".flash")).to_contain_text("Your session ended")
    person.page.goto("/ui/alerts")  # and the cookie is gone
    expect(person.page).to_have_url(re.compile(r"/ui/login"))


def test_every_request_the_browser_makes_goes_to_the_gateway(person, medic, api, expect):
    service = api.register("origin-check")
    person.login(medic.admin_key)
    page = person.page
    for path in ("/ui/", "/ui/services", f"/ui/services/{service['service_id']}", "/ui/alerts",
                 "/ui/deliveries", "/ui/admin", "/ui/no-such-page"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    page.goto("/ui/")
    page.wait_for_timeout(5500)  # one live refresh
    assert any(url.endswith("/ui/live") for url in person.requests)
    assert any(url.endswith("/ui/static/htmx.min.js") for url in person.requests)
    outside = [url for url in person.requests if not url.startswith(medic.gateway_url + "/")]
    assert outside == []


def test_settings_keep_what_was_typed_beside_field_errors_then_save(person, medic, api, expect):
    service = api.register("settings-view")
    person.login(medic.admin_key)
    page = person.page
    page.goto(f"/ui/services/{service['service_id']}")
    page.get_by_label("Service name").fill("Settings View")
    page.get_by_label("Threshold (heartbeats)").fill("two")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#e-threshold")).to_have_text("threshold must be a whole number")
    expect(page.get_by_label("Service name")).to_have_value("Settings View")
    page.get_by_label("Threshold (heartbeats)").fill("0")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#e-threshold")).to_have_text("threshold must be between 1 and 1000")  # the contract's
    page.get_by_label("Threshold (heartbeats)").fill("3")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".flash")).to_have_text("Settings saved.")
    saved = api.service("settings-view")
    assert (saved["service_name"], saved["threshold"]) == ("Settings View", 3)
    metrics = requests.get(medic.gateway_url + "/metrics", timeout=10).text
    assert 'medic_http_requests_total{method="POST",route="/ui:update_service",status="400"}' in metrics


def save_settings(page, typed: dict[str, str]) -> None:
    """Types each value into the settings field of that label, then saves."""
    for label, value in typed.items():
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Save settings").click()


def test_the_job_settings_take_a_cron_schedule_and_put_its_errors_beside_the_fields(person, medic, api, expect):
    service = api.register("nightly-export")
    person.login(medic.admin_key)
    page = person.page
    page.goto(f"/ui/services/{service['service_id']}")
    save_settings(page, {"Schedule (cron)": "61 2 * * *", "Time zone": "Mars/Olympus",
                         "Longest run (seconds)": "an hour"})
    expect(page.locator("#e-max_duration_seconds")).to_have_text("max_duration_seconds must be a whole number")
    expect(page.get_by_label("Schedule (cron)")).to_have_value("61 2 * * *")  # nothing typed is lost
    # The heartbeat service's own messages, beside the field each names (one at a time, as the API).
    save_settings(page, {"Longest run (seconds)": "3600"})
    expect(page.locator("#e-schedule")).to_contain_text("schedule '61 2 * * *' is not a valid cron expression")
    expect(page.get_by_label("Time zone")).to_have_value("Mars/Olympus")
    save_settings(page, {"Schedule (cron)": "30 2 * * *"})
    expect(page.locator("#e-timezone")).to_contain_text("timezone 'Mars/Olympus' is not a known IANA time zone")
    save_settings(page, {"Time zone": "Europe/Berlin", "Shortest run (seconds)": "5",
                         "Failures tolerated in a row": "2"})
    expect(page.locator(".flash")).to_have_text("Settings saved.")
    expect(page.get_by_label("Schedule (cron)")).to_have_value("30 2 * * *")
    expect(page.locator("#service-schedule")).to_have_text("At 02:30 every day, Europe/Berlin")
    expect(page.locator("#h-runs + p")).to_contain_text("alerts at 3 failures in a row")
    saved = api.service("nightly-export")
    assert (saved["schedule"], saved["timezone"], saved["max_duration_seconds"], saved["min_duration_seconds"],
            saved["failure_tolerance"]) == ("30 2 * * *", "Europe/Berlin", 3600, 5, 2)


def test_bulk_actions_apply_to_the_selected_services_and_can_be_undone(person, medic, api, expect):
    for name in ("bulk-one", "bulk-two", "bulk-three"):
        api.register(name)
    person.login(medic.admin_key)
    page = person.page
    page.goto("/ui/services?q=bulk-")
    person.bulk(["bulk-one", "bulk-three"], "deactivate")
    expect(page.locator(".flash")).to_have_text("Deactivated 2 services.")
    expect(page).to_have_url(re.compile(r"/ui/services\?q=bulk-$"))  # back where it was
    assert [api.service(n)["active"] for n in ("bulk-one", "bulk-two", "bulk-three")] == [0, 1, 0]
    expect(page.locator("tr[data-service=bulk-one] .state")).to_contain_text("inactive")

    # One bulk change, undone at once (each service back as its snapshot has it).
    page.get_by_role("button", name="Undo", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Undid the bulk change: 2 services put back as they were.")
    expect(page).to_have_url(re.compile(r"/ui/services\?q=bulk-$"))
    assert [api.service(n)["active"] for n in ("bulk-one", "bulk-two", "bulk-three")] == [1, 1, 1]


def test_no_page_section_costs_more_than_three_rpcs(person, medic, api):
    service = api.register("rpc-budget")
    person.login(medic.admin_key)
    for path in ("/ui/", "/ui/live", "/ui/services", "/ui/services?q=rpc&state=new&sort=deadline",
                 f"/ui/services/{service['service_id']}", "/ui/alerts?service=rpc-budget",
                 "/ui/deliveries?service=rpc-budget", "/ui/admin"):
        response = person.page.goto(path)
        timing = response.headers["server-timing"]
        counts = {name: int(n) for name, n in re.findall(r'rpc-([\w-]+);desc="(\d+)"', timing)}
        assert counts and max(counts.values()) <= 3, (path, timing)


def test_unknown_pages_get_a_real_404_page(person, medic, expect):
    person.login(medic.admin_key)
    response = person.page.goto("/ui/services/999999")
    assert response.status == 404
    expect(person.page.locator("h1")).to_contain_text("Not found")
    response = person.page.goto("/ui/nowhere")
    assert response.status == 404
    assert "text/html" in response.headers["content-type"]


def test_a_backend_outage_names_the_missing_part_and_the_rest_renders(person, medic, api, expect):
    service = api.register("outage-view")
    person.login(medic.admin_key)
    delivery = medic.child_pid("delivery")
    os.kill(delivery, signal.SIGSTOP)  # delivery stops answering (RPC deadline 2 s here)
    try:
        person.page.goto(f"/ui/services/{service['service_id']}")
        expect(person.page.locator("h1")).to_contain_text("outage-view")
        expect(person.page.locator("#service-state")).to_contain_text("new")
        section = person.page.locator("section", has=person.page.locator("#h-deliveries"))
        expect(section.locator(".unavailable")).to_contain_text("delivery service did not answer in time")
        expect(person.page.locator("section", has=person.page.locator("#h-transitions"))).not_to_contain_text(
            "unavailable")
    finally:
        os.kill(delivery, signal.SIGCONT)
    person.page.reload()
    expect(person.page.locator(".unavailable")).to_have_count(0)


def test_times_show_in_the_browsers_zone_with_utc_in_the_tooltip(chromium, medic, api, expect):
    api.register("zone-view")
    api.beat("zone-view")
    tokyo = ConsoleUser(chromium, medic.gateway_url, timezone_id="Asia/Tokyo")
    try:
        tokyo.login(medic.admin_key)
        tokyo.page.goto("/ui/services?q=zone-view")
        seen = tokyo.page.locator("tr[data-service=zone-view] time").first
        utc = seen.get_attribute("title")
        assert utc.endswith(" UTC")
        hour_utc = int(utc.split(" ")[1].split(":")[0])
        expect(seen).to_contain_text("GMT+9")  # en-GB names Tokyo's zone GMT+9
        shown = re.search(r"(\d{2}):\d{2}:\d{2}", seen.inner_text()).group(1)
        assert int(shown) == (hour_utc + 9) % 24
    finally:
        tokyo.close()


def test_the_layout_fits_a_phone(chromium, medic, api, expect):
    api.register("phone-view")
    phone = ConsoleUser(chromium, medic.gateway_url)
    try:
        phone.page.set_viewport_size({"width": 390, "height": 844})
        phone.login(medic.admin_key)
        for path in ("/ui/", "/ui/services", "/ui/alerts"):
            phone.page.goto(path)
            width = phone.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide on a 390 px phone"
    finally:
        phone.close()


def test_screenshots_of_the_console_in_light_and_dark(chromium, medic, api, expect, tmp_path):
    """Writes the README's screenshots (MEDIC_CONSOLE_SCREENSHOTS=docs/console to refresh them)."""
    folder = screenshot_folder(tmp_path)
    for name in ("payments-api", "search-indexer", "nightly-backup", "email-sender"):
        api.register(name, interval=3600)
    for name in ("payments-api", "search-indexer", "email-sender"):
        api.beat(name)
    service_id = api.service("payments-api")["service_id"]
    shots = {"overview": "/ui/", "services": "/ui/services", "service": f"/ui/services/{service_id}",
             "alerts": "/ui/alerts"}
    take_screenshots(chromium, medic.gateway_url, medic.admin_key, shots, folder)


def test_a_jobs_page_shows_its_schedule_in_words_its_runs_a_duration_chart_and_stats(person, medic, api, expect):
    job = api.call("POST", "/service", json={"heartbeat_name": "console-job", "service_name": "batch",
                                             "alert_interval_seconds": 3600, "schedule": "30 9 * * 1-5",
                                             "timezone": "Europe/Berlin", "grace_period_seconds": 600})[0]
    for n in range(6):
        api.call("POST", f"/v2/heartbeat/{job['service_id']}/start", expect_status=201, json={"run_id": f"r{n}"})
        end = "fail" if n == 3 else "complete"
        api.call("POST", f"/v2/heartbeat/{job['service_id']}/{end}", expect_status=201,
                 json={"run_id": f"r{n}", "message": f"exit code {3 if n == 3 else 0}\nrun {n} done"})
    person.login(medic.admin_key)
    page = person.page
    page.goto(f"/ui/services/{job['service_id']}")
    expect(page.locator("#service-schedule")).to_have_text(
        "At 09:30 on Monday through Friday, Europe/Berlin, 10 min grace")
    expect(page.locator("#runs tbody tr")).to_have_count(6)
    expect(page.locator("#runs tbody tr").first).to_contain_text("r5")
    expect(page.locator("#runs tbody tr", has_text="r3")).to_contain_text("failed")
    expect(page.locator("#duration-chart rect")).to_have_count(6)  # drawn by the server: an SVG of six bars
    expect(page.locator("#duration-chart rect.tl-fail")).to_have_count(1)
    expect(page.locator("#run-stats")).to_contain_text("Success rate")
    expect(page.locator("#run-stats")).to_contain_text("83 % of 6")
