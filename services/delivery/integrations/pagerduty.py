"""PagerDuty integration: Events API v2.

Trigger, reminder, acknowledge and resolve of one alert share one `dedup_key`,
so PagerDuty folds a reminder (and any redelivery) into the open incident, an
acknowledgement in Medic acknowledges it, and the resolve closes it. 202 = success; 400 (invalid event) is permanent.

A maintenance window's announcement is never sent here: routing leaves
PagerDuty targets out of it (an announcement is no incident, and a change event
would need an endpoint and a key of its own). Planning refuses one anyway.
"""
from __future__ import annotations

import json
from typing import Any

from medic.references import alert_reference
from services.delivery import http
from services.delivery.integrations.base import Integration
from services.delivery.model import AttemptResult, Notification, Outcome

SEVERITY = {"p1": "critical", "p2": "error", "p3": "warning", "p4": "info", "p5": "info"}
ACTIONS = {"trigger": "trigger", "reminder": "trigger", "resolve": "resolve", "acknowledge": "acknowledge"}
VERBS = {"resolve": "recovered", "acknowledge": "is down (acknowledged)"}


def dedup_key(alert_id: int) -> str:
    """Stable per alert: trigger, reminders and resolve all carry it (and the
    legacy `GET /alerts` shows it as the alert's external_reference_id)."""
    return alert_reference(alert_id)


def severity(priority: str) -> str:
    return SEVERITY.get(priority, "warning")


def build_event(routing_key: str, event: dict[str, Any]) -> dict[str, Any]:
    service = event["service"]
    name = service.get("service_name") or service.get("heartbeat_name", "")
    verb = VERBS.get(event["kind"], "is down")
    reason = event.get("reason", "").replace("_", " ")
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": ACTIONS[event["kind"]],
        "dedup_key": dedup_key(event["alert_id"]),
        "payload": {
            "summary": f"[{service.get('priority', '').upper()}] {name} {verb} ({reason})"[:1024],
            "source": service.get("heartbeat_name", "") or "medic",
            "severity": severity(service.get("priority", "")),
            "custom_details": {
                "alert_id": event["alert_id"], "event": event["kind"], "reason": event.get("reason"),
                "service_id": service.get("service_id"),
                "heartbeat_name": service.get("heartbeat_name"),
                "service_name": service.get("service_name"), "team": service.get("team"),
                "priority": service.get("priority"), "opened_at": event.get("opened_at"),
                "closed_at": event.get("closed_at"), "runbook": service.get("runbook"),
            },
        },
        "links": [],
    }
    run = event.get("run")
    if run:  # the job run behind the alert, with the first 1 KiB of its output
        body["payload"]["custom_details"].update(
            {"run_id": run.get("run_id"), "run_status": run.get("status"), "run_output": run.get("output")})
    runbook = service.get("runbook") or ""
    if runbook.startswith(("http://", "https://")):
        body["links"].append({"href": runbook, "text": "Runbook"})
    return body


def classify(status_code: int) -> Outcome:
    if status_code == 202:
        return Outcome.SUCCESS
    generic = http.classify_status(status_code)
    return generic if generic is not Outcome.SUCCESS else Outcome.PERMANENT


class PagerDutySender(Integration):
    target_type = "pagerduty"
    destination_field = "routing_key"
    destination_is_secret = True
    announced_to = False
    settings_fields = {"events_url": "pagerduty_events_url", "timeout": "delivery_http_timeout_seconds"}

    def __init__(self, events_url: str, timeout: float):
        self.url = events_url
        self.timeout = timeout

    @classmethod
    def idempotency_key(cls, event: dict[str, Any], position: int) -> str:
        return dedup_key(event["alert_id"])

    def send(self, notification: Notification) -> AttemptResult:
        body = build_event(notification.config["routing_key"], notification.event)
        response, result = http.post(self.url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"}, self.timeout)
        if response is None:
            return result
        outcome = classify(response.status_code)
        error = "" if outcome is Outcome.SUCCESS else f"HTTP {response.status_code}"
        return AttemptResult(outcome, response_code=result.response_code,
                             response_body=result.response_body, error=error,
                             latency_ms=result.latency_ms, retry_after=result.retry_after)
