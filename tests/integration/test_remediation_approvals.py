"""Approvals (Slack's signed buttons, the API, timeout:Xm with the clock moved),
the webhook trigger with its secret and per-IP limit, and the circuit breaker."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
from urllib.parse import urlencode

import grpc
import pytest

from medic.config import Settings
from medic.v1 import remediation_pb2, remediation_pb2_grpc
from gateway.remediation import slack_signature
from services.remediation import app as remediation_app
from tests.integration.conftest import SLACK_SIGNING_SECRET, WEBHOOK_SECRET
from tests.support.authorizers import AllowAll
from tests.support.receivers import Reply, WebhookReceiver
from tests.support.playbooks import wait_for_status
from tests.support.servers import serving
from tests.support.waiting import wait_for


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook


def create_playbook(http, url: str, approval: str = "none", name: str = "fix") -> int:
    document = f"name: {name}\napproval: {approval}\nsteps:\n  - name: call\n    type: webhook\n    url: {url}/fix\n"
    created = http.post("/v2/playbooks", json={"yaml": document})
    assert created.status_code == 201, created.text
    return created.json()["results"]["playbook_id"]


def slack_click(http, execution_id: int, action: str = "approve_playbook", *, secret=SLACK_SIGNING_SECRET,
                timestamp: int | None = None, user: str = "U0APPROVER"):
    """POSTs a block_actions interaction as Slack sends and signs it."""
    payload = {"type": "block_actions", "user": {"id": user, "username": "oncall"},
               "actions": [{"action_id": action, "value": str(execution_id), "type": "button"}],
               "channel": {"id": "C0OPS"}, "message": {"ts": "1700000000.000100"}}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": slack_signature(secret, ts, body)}
    session = http.session.__class__()  # Slack sends no API key
    return session.post(http.url + "/v2/slack/interactions", data=body, headers=headers, timeout=10)


def test_a_signed_slack_click_approves_a_waiting_execution(http, receiver):
    playbook_id = create_playbook(http, receiver.url, "required")
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    assert wait_for_status(http, execution_id, "pending_approval")["status"] == "pending_approval"

    clicked = slack_click(http, execution_id)
    assert clicked.status_code == 200, clicked.text
    receiver.wait_for(1)
    execution = wait_for_status(http, execution_id, "completed")
    assert execution["status"] == "completed" and execution["decided_by"] == "slack:U0APPROVER"
    assert ("approved", "slack:U0APPROVER") in [(e["kind"], e["actor"]) for e in execution["events"]]


def test_a_slack_click_can_reject(http, receiver):
    playbook_id = create_playbook(http, receiver.url, "required")
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    assert slack_click(http, execution_id, "reject_playbook").status_code == 200
    assert http.get(f"/v2/executions/{execution_id}").json()["results"]["status"] == "rejected"
    # A second click: Slack shows the error to the clicker (with a 200, as Slack wants).
    again = slack_click(http, execution_id)
    assert again.status_code == 200 and "rejected" in again.json()["text"]
    assert receiver.requests == []


def test_forged_or_old_slack_requests_are_refused(http, receiver):
    playbook_id = create_playbook(http, receiver.url, "required")
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    forged = slack_click(http, execution_id, secret="not-the-signing-secret")
    assert forged.status_code == 401 and forged.json()["message"] == "Invalid signature"
    old = slack_click(http, execution_id, timestamp=int(time.time()) - 301)
    assert old.status_code == 401
    future = slack_click(http, execution_id, timestamp=int(time.time()) + 301)
    assert future.status_code == 401
    unsigned = http.session.__class__().post(http.url + "/v2/slack/interactions", data=b"payload=%7B%7D",
                                             timeout=10)
    assert unsigned.status_code == 401
    assert http.get(f"/v2/executions/{execution_id}").json()["results"]["status"] == "pending_approval"
    assert receiver.requests == []


def test_the_webhook_trigger_needs_the_secret_and_is_limited_per_ip(http, receiver):
    playbook_id = create_playbook(http, receiver.url)
    outside = http.session.__class__()
    path = f"{http.url}/v2/webhooks/playbooks/{playbook_id}/trigger"
    missing = outside.post(path, json={}, timeout=10)
    assert missing.status_code == 401 and missing.json()["message"] == "Missing X-Webhook-Secret header"
    wrong = outside.post(path, json={}, headers={"X-Webhook-Secret": "guess"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid webhook secret"
    started = outside.post(path, json={"variables": {"TICKET": "INC-1"}},
                           headers={"X-Webhook-Secret": WEBHOOK_SECRET}, timeout=10)
    assert started.status_code == 201, started.text
    results = started.json()["results"]
    assert results["playbook_id"] == playbook_id and results["execution_id"] > 0
    receiver.wait_for(1)
    execution = wait_for_status(http, results["execution_id"], "completed")
    assert execution["trigger"] == "webhook" and execution["events"][0]["actor"] == "webhook:127.0.0.1"
    bad = outside.post(path, json={"service_id": "x"}, headers={"X-Webhook-Secret": WEBHOOK_SECRET}, timeout=10)
    assert bad.status_code == 400 and bad.json()["message"] == "service_id must be an integer."
    # 4 requests so far from this address; the limit is 10 a minute, whatever the secret.
    answers = [outside.post(path, json={}, headers={"X-Webhook-Secret": "guess"}, timeout=10).status_code
               for _ in range(7)]
    assert answers == [401] * 6 + [429]
    limited = outside.post(path, json={}, headers={"X-Webhook-Secret": WEBHOOK_SECRET}, timeout=10)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_circuit_breaker_trips_at_n_plus_one_and_records_the_trip_once(http, stack, db, receiver):
    # The stack's default: 5 executions per service per hour.
    sid = http.post("/service", json={"heartbeat_name": "flaky", "service_name": "flaky",
                                      "alert_interval": 60}).json()["results"][0]["service_id"]
    playbook_id = create_playbook(http, receiver.url)
    answers = [http.post(f"/v2/playbooks/{playbook_id}/execute", json={"service_id": sid})
               for _ in range(7)]
    assert [a.status_code for a in answers] == [201] * 5 + [400, 400]
    assert "circuit breaker open for service" in answers[5].json()["message"]
    trips = db.all("SELECT service_id, refused FROM remediation_breaker_trips")
    assert trips == [{"service_id": sid, "refused": 2}]
    # Another service is not affected.
    other = http.post("/service", json={"heartbeat_name": "steady", "service_name": "steady",
                                        "alert_interval": 60}).json()["results"][0]["service_id"]
    assert http.post(f"/v2/playbooks/{playbook_id}/execute", json={"service_id": other}).status_code == 201


class Clock:
    def __init__(self):
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_timeout_approval_approves_by_itself_when_its_minutes_pass(database_url, db, receiver):
    clock = Clock()
    settings = Settings(database_url=database_url, webhook_allow_private=True, remediation_poll_seconds=0.05)
    with serving(remediation_app.build(settings, db, clock=clock), AllowAll()) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = remediation_pb2_grpc.RemediationServiceStub(channel)
            document = f"name: slow\napproval: timeout:1m\nsteps:\n  - name: call\n    type: webhook\n" \
                       f"    url: {receiver.url}/fix\n"
            playbook_id = stub.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(yaml=document)).playbook_id
            started = stub.ExecutePlaybook(remediation_pb2.ExecutePlaybookRequest(playbook_id=playbook_id))
            assert started.status == remediation_pb2.EXECUTION_STATUS_PENDING_APPROVAL

            def execution():
                return stub.GetExecution(remediation_pb2.GetExecutionRequest(
                    execution_id=started.execution_id)).execution

            clock.advance(59)
            time.sleep(0.5)
            assert execution().status == remediation_pb2.EXECUTION_STATUS_PENDING_APPROVAL
            assert receiver.requests == []
            clock.advance(2)  # 61 s after it was asked
            receiver.wait_for(1, timeout=5)
            deadline = time.monotonic() + 5
            while execution().status != remediation_pb2.EXECUTION_STATUS_COMPLETED and time.monotonic() < deadline:
                time.sleep(0.05)
            done = execution()
            assert done.status == remediation_pb2.EXECUTION_STATUS_COMPLETED
            assert done.decided_by == "timeout"
            assert [e.kind for e in done.events][:3] == ["execution_started", "approval_requested", "approved"]


def test_an_approval_request_is_posted_to_slack_with_both_buttons(database_url, db):
    from tests.support.receivers import SlackReceiver

    with SlackReceiver() as slack:
        slack.script(Reply(500, {}))  # Slack down at first: posted again after the claim's lease
        settings = Settings(database_url=database_url, slack_api_url=slack.url, slack_token="xoxb-approvals",
                            slack_approval_channel="C0APPROVALS", remediation_poll_seconds=0.05)
        clock = Clock()
        with serving(remediation_app.build(settings, db, clock=clock), AllowAll()) as running:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = remediation_pb2_grpc.RemediationServiceStub(channel)
                document = "name: careful\napproval: required\nsteps:\n  - name: pause\n    type: wait\n" \
                           "    duration: 1s\n"
                playbook_id = stub.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(yaml=document)).playbook_id
                execution_id = stub.ExecutePlaybook(
                    remediation_pb2.ExecutePlaybookRequest(playbook_id=playbook_id)).execution_id
                slack.wait_for(1, timeout=5)
                clock.advance(31)  # the lease of the failed attempt
                posted = slack.wait_for(2, timeout=5)[1]
    message = posted.json()
    assert posted.path.endswith("/chat.postMessage") and posted.header("Authorization") == "Bearer xoxb-approvals"
    assert message["channel"] == "C0APPROVALS"
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("approve_playbook", str(execution_id)), ("reject_playbook", str(execution_id))]
    time.sleep(0.3)
    assert len(slack.requests) == 2  # posted once it succeeded, not again


@contextlib.contextmanager
def approvals_posted_to(slack, database_url: str, db):
    """A remediation service posting its approval requests to ``slack``: its stub, and a
    function starting an execution of a playbook that needs approval (its id)."""
    settings = Settings(database_url=database_url, slack_api_url=slack.url, slack_token="xoxb-approvals",
                        slack_approval_channel="C0APPROVALS", remediation_poll_seconds=0.05)
    with serving(remediation_app.build(settings, db), AllowAll()) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = remediation_pb2_grpc.RemediationServiceStub(channel)
            document = ("name: careful\napproval: required\nsteps:\n"
                        "  - name: pause\n    type: wait\n    duration: 1s\n")
            playbook_id = stub.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(yaml=document)).playbook_id
            yield stub, lambda: stub.ExecutePlaybook(
                remediation_pb2.ExecutePlaybookRequest(playbook_id=playbook_id)).execution_id


def test_a_decided_approval_request_shows_who_decided_instead_of_its_buttons(database_url, db):
    from tests.support.receivers import SlackReceiver

    with SlackReceiver() as slack:
        with approvals_posted_to(slack, database_url, db) as (stub, execute):
            approved, rejected = execute(), execute()
            slack.wait_for(2, timeout=5)
            # Posted and recorded (where the message is) before anyone decides.
            for execution_id in (approved, rejected):
                wait_for(lambda: "approval_requested" in [e.kind for e in stub.GetExecution(
                    remediation_pb2.GetExecutionRequest(execution_id=execution_id)).execution.events],
                    5, "the approval request")
            stub.ApproveExecution(remediation_pb2.ApproveExecutionRequest(execution_id=approved),
                                  metadata=[("x-medic-actor", "alice")])
            stub.RejectExecution(remediation_pb2.RejectExecutionRequest(execution_id=rejected),
                                 metadata=[("x-medic-actor", "bob")])
            updates = [r for r in slack.wait_for(4, timeout=5) if r.path.endswith("/chat.update")]
    # The default answer of the stand-in: every message was posted as C0 / 1700000000.000100.
    decided = {}
    for update in updates:
        message = update.json()
        assert (message["channel"], message["ts"]) == ("C0", "1700000000.000100")
        assert not [b for b in message["blocks"] if b["type"] == "actions"]
        execution_id = int(message["blocks"][1]["text"]["text"].split("*Execution ID:* `")[1].rstrip("`"))
        decided[execution_id] = message["blocks"][-1]["elements"][0]["text"]
    assert decided == {approved: "Approved by alice", rejected: "Rejected by bob"}


def test_a_request_decided_while_it_was_being_posted_shows_the_decision(database_url, db):
    from tests.support.receivers import SlackReceiver

    with SlackReceiver() as slack:
        # Slack answers the post slowly: the decision comes before the message's ts is known.
        slack.script(Reply(200, {"ok": True, "channel": "C0SLOW", "ts": "1700000000.000200"}, delay=1.5))
        with approvals_posted_to(slack, database_url, db) as (stub, execute):
            execution_id = execute()
            slack.wait_for(1, timeout=5)
            stub.RejectExecution(remediation_pb2.RejectExecutionRequest(execution_id=execution_id))
            update = slack.wait_for(2, timeout=10)[1]
    message = update.json()
    assert update.path.endswith("/chat.update") and (message["channel"], message["ts"]) == ("C0SLOW",
                                                                                        "1700000000.000200")
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    assert message["blocks"][-1]["elements"][0]["text"].startswith("Rejected by ")
