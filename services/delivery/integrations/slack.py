"""Slack integration: `chat.postMessage` with a bot token.

Success iff HTTP 200 and `ok: true`. `ok: false` is permanent unless Slack
says the problem is on its side or a rate limit.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from medic.config import Settings
from services.delivery import http
from services.delivery.integrations.base import Integration
from services.delivery.model import AttemptResult, Notification, Outcome

log = logging.getLogger(__name__)

# Slack errors worth another attempt; every other `ok: false` error
# (channel_not_found, not_in_channel, invalid_auth, ...) fails at once.
RETRYABLE_ERRORS = {"ratelimited", "rate_limited", "internal_error", "fatal_error",
                    "service_unavailable", "request_timeout"}

HEADLINES = {"trigger": ":rotating_light: *{name}* is down",
             "reminder": ":warning: *{name}* is still down",
             "resolve": ":white_check_mark: *{name}* recovered",
             "acknowledge": ":eyes: *{name}* is down, acknowledged"}
REASONS = {"missed_heartbeats": "missed heartbeats", "reported_failure": "reported failure",
           "run_too_long": "run too long", "run_too_fast": "run too fast"}


WINDOW_HEADLINES = {"window_started": ":construction: Maintenance window started for *{name}*",
                    "window_ended": ":white_check_mark: Maintenance window ended for *{name}*"}


def build_announcement(channel: str, event: dict[str, Any]) -> dict[str, Any]:
    """A maintenance window's start or end, as a chat.postMessage body."""
    service, window = event["service"], event["window"]
    name = service.get("service_name") or service.get("heartbeat_name", "")
    headline = WINDOW_HEADLINES[event["kind"]].format(name=name)
    until = "until" if event["kind"] == "window_started" else "ended"
    text = f"{headline.replace('*', '')}: {window['reason']} ({until} {window['ends_at']})"
    details = [f"*Heartbeat:* `{service.get('heartbeat_name', '')}`", f"*Reason:* {window['reason']}",
               f"*Window:* #{window['window_id']} from {window['starts_at']} to {window['ends_at']}"]
    return {"channel": channel, "text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": d} for d in details]}]}


def build_message(channel: str, event: dict[str, Any]) -> dict[str, Any]:
    """The chat.postMessage body: {channel, text, blocks}."""
    if event.get("window"):
        return build_announcement(channel, event)
    service = event["service"]
    name = service.get("service_name") or service.get("heartbeat_name", "")
    headline = HEADLINES[event["kind"]].format(name=name)
    priority = service.get("priority", "")
    reason = REASONS.get(event.get("reason", ""), event.get("reason", ""))
    text = f"[{priority.upper()}] {headline.replace('*', '')} ({reason})"
    details = [f"*Heartbeat:* `{service.get('heartbeat_name', '')}`",
               f"*Priority:* {priority}", f"*Team:* {service.get('team', '')}",
               f"*Reason:* {reason}", f"*Alert:* #{event['alert_id']} opened {event.get('opened_at')}"]
    if event.get("closed_at"):
        details.append(f"*Closed:* {event['closed_at']}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": d} for d in details]},
    ]
    run = event.get("run") or {}
    if run:
        details.append(f"*Run:* `{run.get('run_id') or '-'}` {run.get('status', '')}")
    if run.get("output"):  # the first 1 KiB of the run's output, as the job sent it
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                    "text": "*Output:*\n```" + run["output"] + "```"}})
    if service.get("runbook"):
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Runbook: {service['runbook']}"}]})
    return {"channel": channel, "text": text, "blocks": blocks}


def classify(status_code: int, body: Any) -> tuple[Outcome, str]:
    """(outcome, error) of a chat.postMessage answer that arrived."""
    generic = http.classify_status(status_code)
    if status_code != 200:
        return (generic if generic is not Outcome.SUCCESS else Outcome.PERMANENT,
                f"HTTP {status_code}")
    if not isinstance(body, dict):
        return Outcome.RETRYABLE, "unreadable Slack answer"
    if body.get("ok") is True:
        return Outcome.SUCCESS, ""
    error = str(body.get("error") or "unknown_error")
    return (Outcome.RETRYABLE if error in RETRYABLE_ERRORS else Outcome.PERMANENT), f"slack: {error}"


class SlackSender(Integration):
    target_type = "slack"
    destination_field = "channel_id"
    settings_fields = {"api_url": "slack_api_url", "token": "slack_token",
                       "timeout": "delivery_http_timeout_seconds"}

    def __init__(self, api_url: str, token: str, timeout: float):
        self.url = api_url.rstrip("/") + "/chat.postMessage"
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> "SlackSender":
        if not settings.slack_token:
            log.warning("MEDIC_SLACK_TOKEN is not set: Slack deliveries will fail (not_authed)")
        return super().from_settings(settings)

    def send(self, notification: Notification) -> AttemptResult:
        message = build_message(notification.config["channel_id"], notification.event)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Authorization": f"Bearer {self.token}"}
        response, result = http.post(self.url, json.dumps(message).encode(), headers, self.timeout)
        if response is None:
            return result
        try:
            body = response.json()
        except ValueError:
            body = None
        outcome, error = classify(response.status_code, body)
        return AttemptResult(outcome, response_code=result.response_code,
                             response_body=result.response_body, error=error,
                             latency_ms=result.latency_ms, retry_after=result.retry_after)
