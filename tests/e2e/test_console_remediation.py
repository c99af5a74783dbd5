"""Remediation in the console, in a real browser against ``medic up``: a
playbook applied from the form (a refused one answered by line and field), run
by hand, waiting for approval, approved, and its steps shown live; a read key
that sees no decision buttons and whose forged approval gets 403."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_console import api, expect, medic, person  # noqa: F401 (fixtures)
from tests.support.browser import screenshot_folder, take_screenshots
from tests.support.receivers import WebhookReceiver

pytestmark = pytest.mark.e2e


def playbook(name: str, url: str, approval: str = "required") -> str:
    return f"""name: {name}
description: Restart by hand, then settle
approval: {approval}
steps:
  - name: restart
    type: webhook
    url: {url}/restart
  - name: settle
    type: wait
    duration: 1s
"""


def test_a_playbook_applied_from_the_form_runs_after_approval_step_by_step(person, medic, api, expect):
    person.login(medic.admin_key)
    page = person.page
    page.get_by_role("link", name="Playbooks").click()

    # A document the service refuses: its problems by line and field, and the text kept.
    bad = "name: broken\nsteps:\n  - name: call\n    type: webhook\n    method: FETCH\n"
    page.get_by_label("Playbook YAML").fill(bad)
    page.get_by_role("button", name="Apply playbook").click()
    problems = page.locator("#playbook-problems li")
    expect(problems.first).to_be_visible()
    expect(page.locator("#playbook-problems")).to_contain_text("line 3, steps[0].url:")
    expect(page.locator("#playbook-problems")).to_contain_text("line 5, steps[0].method: invalid HTTP method FETCH")
    expect(page.get_by_label("Playbook YAML")).to_have_value(bad)

    with WebhookReceiver() as receiver:
        page.get_by_label("Playbook YAML").fill(playbook("console-restart", receiver.url))
        page.get_by_role("button", name="Apply playbook").click()
        expect(page.locator(".flash")).to_have_text("Playbook console-restart created.")
        row = page.locator("tr[data-playbook=console-restart]")
        expect(row).to_contain_text("required")
        row.get_by_text("YAML").click()
        expect(row.locator("pre.yaml")).to_contain_text("type: webhook")

        row.get_by_role("button", name="Run console-restart").click()
        expect(page).to_have_url(re.compile(r"/ui/executions/\d+$"))
        expect(page.locator(".flash")).to_contain_text("started")
        expect(page.locator("#execution-status")).to_have_text("pending approval")
        expect(page.locator("#steps tbody tr")).to_have_count(2)
        assert len(receiver.requests) == 0  # nothing runs before the approval

        page.evaluate("window.__notReloaded = true")
        page.get_by_role("button", name="Approve").click()
        execution_id = page.url.rsplit("/", 1)[1]
        expect(page.locator(".flash")).to_have_text(f"Execution #{execution_id} approved.")
        # The steps move on by themselves, shown by the live refresh.
        page.evaluate("window.__notReloaded = true")
        expect(page.locator("#execution-status")).to_have_text("completed", timeout=30000)
        assert page.evaluate("window.__notReloaded") is True
        expect(page.locator("tr[data-step=restart] .status")).to_have_text("completed")
        expect(page.locator("tr[data-step=settle] .status")).to_have_text("completed")
        expect(page.locator("#execution-events")).to_contain_text("approved")
        assert page.get_by_role("button", name="Approve").count() == 0
        assert len(receiver.requests) == 1

    page.get_by_role("link", name="Executions").click()
    expect(page.locator(f"tr[data-execution='{execution_id}'] .status")).to_have_text("completed")


def test_a_waiting_execution_can_be_rejected_or_cancelled(person, medic, api, expect):
    created = api.call("POST", "/v2/playbooks", json={"yaml": playbook("console-reject", "http://127.0.0.1:9")})
    rejected, cancelled = (api.call("POST", f"/v2/playbooks/{created['playbook_id']}/execute", json={})["execution_id"]
                           for _ in range(2))
    person.login(medic.admin_key)
    page = person.page
    page.goto(f"/ui/executions/{rejected}")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator(".flash")).to_have_text(f"Execution #{rejected} rejected.")
    expect(page.locator("#execution-status")).to_have_text("rejected")
    expect(page.locator("tr[data-step=restart] .status")).not_to_have_text("completed")  # no step ran
    assert page.get_by_role("button", name=re.compile("Approve|Reject|Cancel")).count() == 0  # it has ended

    page.goto(f"/ui/executions/{cancelled}")
    page.get_by_role("button", name="Cancel execution").click()
    expect(page.locator("#execution-status")).to_have_text("cancelled")
    page.goto("/ui/executions?status=cancelled")
    expect(page.locator(f"tr[data-execution='{cancelled}']")).to_be_visible()
    expect(page.locator(f"tr[data-execution='{rejected}']")).to_have_count(0)


def test_a_read_key_sees_no_decision_buttons_and_its_forged_approval_gets_403(person, api, expect):
    created = api.call("POST", "/v2/playbooks", json={"yaml": playbook("console-read", "http://127.0.0.1:9")})
    started = api.call("POST", f"/v2/playbooks/{created['playbook_id']}/execute", json={})
    person.login(api.key("remediation-viewer", ["read"]))
    page = person.page
    page.goto("/ui/playbooks")
    expect(page.locator("tr[data-playbook=console-read]")).to_be_visible()
    assert page.get_by_role("button", name=re.compile("Run|Apply")).count() == 0
    assert page.get_by_label("Playbook YAML").count() == 0

    page.goto(f"/ui/executions/{started['execution_id']}")
    expect(page.locator("#execution-status")).to_have_text("pending approval")
    assert page.get_by_role("button", name=re.compile("Approve|Reject|Cancel")).count() == 0

    forged = person.post(f"/ui/executions/{started['execution_id']}/approve", {"csrf": person.csrf()})
    assert forged.status == 403
    assert "lacks the `write` scope" in forged.text()
    page.reload()
    expect(page.locator("#execution-status")).to_have_text("pending approval")


def test_running_playbooks_from_the_console_is_limited_as_over_the_api(person, api, expect):
    api.call("POST", "/v2/playbooks", json={"yaml": playbook("console-limited", "http://127.0.0.1:9")})
    person.login(api.key("playbook-runner", ["read", "write"]))
    page = person.page
    for _ in range(10):  # MEDIC_RATE_LIMIT_PLAYBOOK_EXECUTE_PER_MINUTE: 10 by default
        page.goto("/ui/playbooks")
        page.get_by_role("button", name="Run console-limited").click()
        expect(page.locator("#execution-status")).to_have_text("pending approval")
    page.goto("/ui/playbooks")
    with page.expect_response(re.compile(r"/execute$")) as refused:
        page.get_by_role("button", name="Run console-limited").click()
    assert refused.value.status == 429
    expect(page.locator(".flash-error")).to_contain_text("rate limit of 10 playbook_execute requests per minute")
    page.goto("/ui/services")  # the rest of the console still works
    expect(page.locator("h1")).to_have_text("Services")


def test_the_history_and_remediation_pages_cost_at_most_three_rpcs_a_section_and_load_nothing_outside(
        person, medic, api):
    service = api.register("budget-history")
    created = api.call("POST", "/v2/playbooks", json={"yaml": playbook("console-budget", "http://127.0.0.1:9")})
    started = api.call("POST", f"/v2/playbooks/{created['playbook_id']}/execute", json={})
    person.login(medic.admin_key)
    for path in ("/ui/audit", "/ui/audit?service_id=1&action_type=register", f"/ui/services/{service['service_id']}",
                 "/ui/playbooks", "/ui/executions", "/ui/executions?status=pending_approval",
                 f"/ui/executions/{started['execution_id']}", f"/ui/executions/{started['execution_id']}/live"):
        response = person.page.goto(path)
        assert response.status == 200, path
        timing = response.headers["server-timing"]
        counts = {name: int(n) for name, n in re.findall(r'rpc-([\w-]+);desc="(\d+)"', timing)}
        assert counts and max(counts.values()) <= 3, (path, timing)
    person.page.goto(f"/ui/executions/{started['execution_id']}")
    person.page.wait_for_timeout(3500)  # one live refresh
    assert any(url.endswith("/live") for url in person.requests)
    outside = [url for url in person.requests if not url.startswith(medic.gateway_url + "/")]
    assert outside == []


def test_screenshots_of_the_audit_playbooks_and_execution_pages(chromium, medic, api, tmp_path):
    """Writes the README's screenshots of these pages (MEDIC_CONSOLE_SCREENSHOTS=docs/console)."""
    api.register("orders-worker", interval=300)
    api.call("POST", "/service/orders-worker", json={"alert_interval_seconds": 600})
    api.call("POST", "/v2/services/bulk", json={"service_ids": [api.service("orders-worker")["service_id"]],
                                                "muted": True})
    created = api.call("POST", "/v2/playbooks", json={"yaml": playbook("restart-orders", "http://127.0.0.1:9")})
    started = api.call("POST", f"/v2/playbooks/{created['playbook_id']}/execute", json={})
    take_screenshots(chromium, medic.gateway_url, medic.admin_key,
                     {"audit": "/ui/audit", "playbooks": "/ui/playbooks",
                      "execution": f"/ui/executions/{started['execution_id']}"}, screenshot_folder(tmp_path))
