"""Playbooks and their executions over /v2, through the gateway to a real
remediation service (and heartbeat, for the condition steps), with a local
webhook receiver."""
from __future__ import annotations

import time

import pytest

from tests.support.playbooks import wait_for_status
from tests.support.receivers import Reply, WebhookReceiver
from tests.support.waiting import wait_for


def service_id(http, name="web") -> int:
    body = {"heartbeat_name": name, "service_name": f"{name} service", "alert_interval": 60}
    return http.post("/service", json=body).json()["results"][0]["service_id"]


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook


def playbook(url: str, *, name="restart", approval="none", extra_steps="") -> str:
    return f"""
name: {name}
description: Restart a service that stopped
approval: {approval}
steps:
  - name: call-restart-api
    type: webhook
    url: {url}/restart/${{SERVICE_NAME}}
    method: POST
    headers:
      X-Alert: "${{ALERT_ID}}"
    body:
      service: ${{SERVICE_NAME}}
      heartbeat: ${{HEARTBEAT_NAME}}
      reason: ${{REASON}}
{extra_steps}"""


def test_create_list_and_get_a_playbook(http):
    document = playbook("https://hooks.example.com")
    created = http.post("/v2/playbooks", json={"yaml": document})
    assert created.status_code == 201, created.text
    playbook_id = created.json()["results"]["playbook_id"]
    assert playbook_id > 0 and created.json()["message"] == "Playbook created."
    shown = http.get(f"/v2/playbooks/{playbook_id}").json()["results"]
    assert shown["name"] == "restart" and shown["yaml"] == document and shown["approval"] == "none"
    assert shown["step_count"] == 1
    assert [p["name"] for p in http.get("/v2/playbooks").json()["results"]] == ["restart"]
    assert http.post("/v2/playbooks", json={"yaml": document}).status_code == 409


def test_an_invalid_playbook_is_refused_with_the_line_and_field(http):
    document = "name: broken\nsteps:\n  - name: call\n    type: webhook\n    method: FETCH\n"
    refused = http.post("/v2/playbooks", json={"yaml": document})
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert "line 3, steps[0].url" in message and "line 5, steps[0].method" in message, message
    checked = http.post("/v2/playbooks/validate", json={"yaml": document}).json()["results"]
    assert checked["valid"] is False
    assert {(e["line"], e["field"]) for e in checked["errors"]} == {(3, "steps[0].url"), (5, "steps[0].method")}
    assert http.get("/v2/playbooks").json()["results"] == []


def test_update_replaces_the_document(http):
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook("https://a.example.com")}).json()[
        "results"]["playbook_id"]
    updated = http.request("PUT", f"/v2/playbooks/{playbook_id}",
                           json={"yaml": playbook("https://b.example.com", approval="timeout:5m")})
    assert updated.status_code == 200, updated.text
    assert updated.json()["results"]["approval"] == "timeout"
    assert updated.json()["results"]["approval_timeout_minutes"] == 5


def test_manual_execution_runs_webhook_wait_and_condition_steps(http, receiver):
    sid = service_id(http, "worker-1")
    steps = """  - name: settle
    type: wait
    duration: 1s
  - name: verify
    type: condition
    check: heartbeat_received
    timeout: 20s
"""
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url, extra_steps=steps)}).json()[
        "results"]["playbook_id"]

    started = http.post(f"/v2/playbooks/{playbook_id}/execute",
                        json={"service_id": sid, "variables": {"REASON": "manual test"}})
    assert started.status_code == 201, started.text
    results = started.json()["results"]
    assert results["playbook_id"] == playbook_id and results["service_id"] == sid
    assert results["playbook_name"] == "restart" and results["execution_id"] > 0

    (request,) = receiver.wait_for(1)
    assert request.path == "/restart/worker-1%20service"
    assert request.json() == {"service": "worker-1 service", "heartbeat": "worker-1", "reason": "manual test"}
    assert request.header("Idempotency-Key") == f"medic-execution-{results['execution_id']}-step-0"
    # The service comes back: the condition step sees its heartbeat.
    time.sleep(1.2)
    assert http.post("/heartbeat", json={"heartbeat_name": "worker-1", "status": "UP"}).status_code == 201

    execution = wait_for_status(http, results["execution_id"], "completed", "failed")
    assert execution["status"] == "completed", execution
    assert [(s["name"], s["status"]) for s in execution["steps"]] == [
        ("call-restart-api", "completed"), ("settle", "completed"), ("verify", "completed")]
    assert execution["trigger"] == "api" and execution["completed_at"]
    kinds = [e["kind"] for e in execution["events"]]
    assert kinds == ["execution_started", "step_started", "step_completed", "step_started", "step_completed",
                     "step_started", "step_completed", "execution_completed"]
    listed = http.get(f"/v2/playbooks/{playbook_id}/executions").json()["results"]
    assert [e["execution_id"] for e in listed] == [results["execution_id"]]


def test_a_failing_webhook_fails_the_execution_and_runs_nothing_after_it(http, receiver):
    receiver.always(Reply(500, {"error": "down"}))
    steps = "  - name: after\n    type: wait\n    duration: 1s\n"
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url, extra_steps=steps)}).json()[
        "results"]["playbook_id"]
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    execution = wait_for_status(http, execution_id, "completed", "failed")
    assert execution["status"] == "failed"
    assert execution["steps"][0]["status"] == "failed" and "500" in execution["steps"][0]["error"]
    assert execution["steps"][1]["status"] == "pending"
    assert [e["kind"] for e in execution["events"]][-2:] == ["step_failed", "execution_failed"]


def test_execute_answers_404_for_an_unknown_playbook_or_service(http, receiver):
    assert http.post("/v2/playbooks/999/execute", json={}).status_code == 404
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url)}).json()["results"]["playbook_id"]
    missing = http.post(f"/v2/playbooks/{playbook_id}/execute", json={"service_id": 424242})
    assert missing.status_code == 404 and missing.json()["message"] == "Service ID 424242 not found."
    bad = http.post(f"/v2/playbooks/{playbook_id}/execute", json={"variables": {"X": {"nested": 1}}})
    assert bad.status_code == 400 and "variables.X" in bad.json()["message"]


def test_an_approval_required_execution_waits_until_approved(http, receiver):
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url, approval="required")}).json()[
        "results"]["playbook_id"]
    started = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]
    assert started["status"] == "pending_approval"
    assert started["message"] == "Playbook requires approval before execution. Approve via Slack or API."
    time.sleep(0.5)
    assert receiver.requests == []

    approved = http.post(f"/v2/executions/{started['execution_id']}/approve")
    assert approved.status_code == 200, approved.text
    receiver.wait_for(1)
    execution = wait_for_status(http, started["execution_id"], "completed")
    assert execution["status"] == "completed" and execution["decided_by"].startswith("key:")
    again = http.post(f"/v2/executions/{started['execution_id']}/approve")
    assert again.status_code == 400 or again.status_code == 409, again.text


def test_a_rejected_execution_runs_no_step(http, receiver):
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url, approval="required")}).json()[
        "results"]["playbook_id"]
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    # Approval is requested by the engine (posted to Slack when configured), at once.
    wait_for(lambda: "approval_requested" in [e["kind"] for e in http.get(f"/v2/executions/{execution_id}").json()[
        "results"]["events"]], 10, "the approval request")
    rejected = http.post(f"/v2/executions/{execution_id}/reject").json()["results"]
    assert rejected["status"] == "rejected"
    assert [e["kind"] for e in rejected["events"]] == ["execution_started", "approval_requested", "rejected"]
    time.sleep(0.5)
    assert receiver.requests == []


def test_cancel_stops_an_execution_before_its_next_step(http, receiver):
    steps = "  - name: long-wait\n    type: wait\n    duration: 1h\n  - name: never\n    type: webhook\n" \
            f"    url: {receiver.url}/never\n"
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url, extra_steps=steps)}).json()[
        "results"]["playbook_id"]
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    assert wait_for_status(http, execution_id, "waiting")["status"] == "waiting"
    cancelled = http.post(f"/v2/executions/{execution_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["results"]["status"] == "cancelled"
    assert http.post(f"/v2/executions/{execution_id}/cancel").status_code in (400, 409)
    # A name with no value (no service) stays as written.
    assert [r.path for r in receiver.requests] == ["/restart/$%7BSERVICE_NAME%7D"]
    execution = http.get(f"/v2/executions/{execution_id}").json()["results"]
    # The wait it was in ends with it; the step after it never starts.
    assert [s["status"] for s in execution["steps"]] == ["completed", "cancelled", "pending"]


def test_manual_execution_is_limited_to_10_a_minute_per_key(http, receiver):
    playbook_id = http.post("/v2/playbooks", json={"yaml": playbook(receiver.url)}).json()["results"]["playbook_id"]
    answers = [http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).status_code for _ in range(11)]
    assert answers == [201] * 10 + [429]
    # Other management requests of the key are counted apart.
    assert http.get("/v2/playbooks").status_code == 200
