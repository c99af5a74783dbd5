"""Payloads and answer classification of the Slack, PagerDuty and webhook senders,
and the Standard Webhooks signature checked by an independent implementation."""
import base64
import hashlib
import hmac
import json

import pytest

from services.delivery.integrations import pagerduty, slack, webhook
from services.delivery.http import classify_status
from services.delivery.model import Outcome, truncate_body

EVENT = {
    "event_id": "alert-42-trigger", "kind": "trigger", "alert_id": 42,
    "reason": "missed_heartbeats", "opened_at": "2026-01-01T00:00:00Z", "closed_at": None,
    "occurred_at": "2026-01-01T00:00:00Z",
    "service": {"service_id": 7, "heartbeat_name": "nightly-backup", "service_name": "Backup",
                "team": "storage", "team_id": 3, "priority": "p1",
                "runbook": "https://runbooks/backup", "notify_mode": "all",
                "last_heartbeat_at": None, "alert_interval_seconds": 60},
}


def verify_standard_webhook(secret: str, headers: dict, body: bytes, tolerance: int = 300,
                            now: int | None = None) -> bool:
    """Standard Webhooks verification, written from the spec (not Medic's code)."""
    import time
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs((now or int(time.time())) - int(ts)) > tolerance:
        return False
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.{body.decode()}".encode(), hashlib.sha256).digest()).decode()
    return any(sig.split(",", 1) == ["v1", expected] for sig in headers["webhook-signature"].split())


def test_generated_secret_is_whsec_and_base64_of_32_bytes():
    secret = webhook.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert webhook.generate_secret() != secret


@pytest.mark.parametrize("secret", ["abc", "whsec_!!!", "whsec_" + base64.b64encode(b"x" * 8).decode(),
                                    "whsec_" + base64.b64encode(b"x" * 65).decode()])
def test_malformed_secrets_are_rejected(secret):
    with pytest.raises(ValueError):
        webhook.secret_key(secret)


def test_signature_verifies_with_an_independent_implementation():
    secret = webhook.generate_secret()
    body = json.dumps(webhook.build_body(EVENT)).encode()
    headers = webhook.signed_headers(secret, "alert-42-trigger.0", body, now=1_700_000_000)
    assert headers["webhook-id"] == "alert-42-trigger.0"
    assert headers["webhook-timestamp"] == "1700000000"
    assert verify_standard_webhook(secret, headers, body, now=1_700_000_000)
    assert not verify_standard_webhook(secret, headers, body + b" ", now=1_700_000_000)
    assert not verify_standard_webhook(webhook.generate_secret(), headers, body, now=1_700_000_000)


def test_signature_matches_the_standard_webhooks_reference_vector():
    # From the Standard Webhooks spec / reference libraries' tests.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert webhook.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhook_body_has_type_alert_service_occurred_at_run():
    body = webhook.build_body(EVENT)
    assert set(body) == {"type", "alert", "service", "occurred_at", "run"}
    assert body["run"] is None  # not an alert about a job run
    assert body["type"] == "alert.triggered"
    assert webhook.build_body({**EVENT, "kind": "reminder"})["type"] == "alert.reminder"
    assert webhook.build_body({**EVENT, "kind": "resolve"})["type"] == "alert.resolved"
    assert body["alert"]["alert_id"] == 42 and body["service"]["heartbeat_name"] == "nightly-backup"


@pytest.mark.parametrize("priority, severity", [("p1", "critical"), ("p2", "error"),
                                                ("p3", "warning"), ("p4", "info"), ("p5", "info")])
def test_pagerduty_severity_follows_priority(priority, severity):
    event = {**EVENT, "service": {**EVENT["service"], "priority": priority}}
    assert pagerduty.build_event("rk", event)["payload"]["severity"] == severity


def test_pagerduty_trigger_and_resolve_share_the_dedup_key():
    trigger = pagerduty.build_event("rk", EVENT)
    resolve = pagerduty.build_event("rk", {**EVENT, "kind": "resolve", "event_id": "alert-42-resolve"})
    reminder = pagerduty.build_event("rk", {**EVENT, "kind": "reminder"})
    assert (trigger["event_action"], reminder["event_action"], resolve["event_action"]) == \
        ("trigger", "trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == reminder["dedup_key"] == "medic-alert-42"
    assert set(trigger) == {"routing_key", "event_action", "dedup_key", "payload", "links"}
    assert set(trigger["payload"]) == {"summary", "source", "severity", "custom_details"}
    assert trigger["links"] == [{"href": "https://runbooks/backup", "text": "Runbook"}]


@pytest.mark.parametrize("code, outcome", [(202, Outcome.SUCCESS), (200, Outcome.PERMANENT),
                                           (400, Outcome.PERMANENT), (429, Outcome.RETRYABLE),
                                           (500, Outcome.RETRYABLE), (503, Outcome.RETRYABLE)])
def test_pagerduty_answers(code, outcome):
    assert pagerduty.classify(code) is outcome


def test_slack_message_has_channel_text_blocks():
    message = slack.build_message("C123", EVENT)
    assert set(message) == {"channel", "text", "blocks"}
    assert message["channel"] == "C123"
    assert "Backup" in message["text"] and "P1" in message["text"]


@pytest.mark.parametrize("code, body, outcome", [
    (200, {"ok": True}, Outcome.SUCCESS),
    (200, {"ok": False, "error": "channel_not_found"}, Outcome.PERMANENT),
    (200, {"ok": False, "error": "invalid_auth"}, Outcome.PERMANENT),
    (200, {"ok": False, "error": "ratelimited"}, Outcome.RETRYABLE),
    (200, {"ok": False, "error": "internal_error"}, Outcome.RETRYABLE),
    (200, None, Outcome.RETRYABLE),
    (429, None, Outcome.RETRYABLE),
    (503, None, Outcome.RETRYABLE),
    (404, None, Outcome.PERMANENT),
    (201, {"ok": True}, Outcome.PERMANENT),
])
def test_slack_answers(code, body, outcome):
    assert slack.classify(code, body)[0] is outcome


@pytest.mark.parametrize("code, outcome", [(200, Outcome.SUCCESS), (204, Outcome.SUCCESS),
                                           (301, Outcome.PERMANENT), (400, Outcome.PERMANENT),
                                           (404, Outcome.PERMANENT), (408, Outcome.RETRYABLE),
                                           (429, Outcome.RETRYABLE), (500, Outcome.RETRYABLE),
                                           (502, Outcome.RETRYABLE)])
def test_generic_http_answers(code, outcome):
    assert classify_status(code) is outcome


def test_response_body_is_truncated_to_4096_bytes_on_a_character_boundary():
    assert truncate_body("a" * 5000) == "a" * 4096
    cut = truncate_body("é" * 3000)
    assert len(cut.encode()) <= 4096 and set(cut) == {"é"}


FAILED_RUN = {**EVENT, "reason": "reported_failure",
              "run": {"run_id": "nightly-7", "status": "failed", "output": "exit 3\ndisk full"}}


def test_a_failed_runs_output_is_in_every_payload():
    assert webhook.build_body(FAILED_RUN)["run"] == {"run_id": "nightly-7", "status": "failed",
                                                     "output": "exit 3\ndisk full"}
    details = pagerduty.build_event("rk", FAILED_RUN)["payload"]["custom_details"]
    assert (details["run_id"], details["run_status"], details["run_output"]) == (
        "nightly-7", "failed", "exit 3\ndisk full")
    message = slack.build_message("C1", FAILED_RUN)
    assert any("exit 3\ndisk full" in block.get("text", {}).get("text", "") for block in message["blocks"])
    assert "run_output" not in pagerduty.build_event("rk", EVENT)["payload"]["custom_details"]


ANNOUNCEMENT = {
    **EVENT, "event_id": "window-4-1767225600-started-7", "kind": "window_started", "alert_id": None,
    "reason": "unspecified", "opened_at": None,
    "window": {"window_id": 4, "reason": "storage migration", "starts_at": "2026-01-01T00:00:00Z",
               "ends_at": "2026-01-01T02:00:00Z"},
}


def test_a_window_announcement_is_a_window_event_for_webhooks_and_slack():
    body = webhook.build_body(ANNOUNCEMENT)
    assert (body["type"], body["window"], body["service"]["heartbeat_name"]) == (
        "window.started", ANNOUNCEMENT["window"], "nightly-backup")
    assert "alert" not in body
    ended = webhook.build_body({**ANNOUNCEMENT, "kind": "window_ended"})
    assert ended["type"] == "window.ended"
    message = slack.build_message("C1", ANNOUNCEMENT)
    assert "Maintenance window started for Backup" in message["text"]
    assert "storage migration" in message["text"] and "2026-01-01T02:00:00Z" in message["text"]
    assert "ended" in slack.build_message("C1", {**ANNOUNCEMENT, "kind": "window_ended"})["text"]
