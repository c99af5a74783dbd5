"""Webhook integration: a JSON POST with the target's headers, signed with the
Standard Webhooks scheme when the subscription has a secret. Notification
targets of type webhook (routing's, config {url, headers}) have no secret and
go out unsigned; only webhook subscriptions are signed.

Signature: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
where key = base64-decoded part of the secret after `whsec_`; `webhook-id` is the
delivery's idempotency key (stable across retries), `webhook-timestamp` unix seconds.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from medic import ssrf
from medic.webhooks import RESERVED_HEADERS
from services.delivery import http
from services.delivery.integrations.base import Integration
from services.delivery.model import AttemptResult, Notification, Outcome

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
EVENT_TYPES = {"trigger": "alert.triggered", "reminder": "alert.reminder",
               "resolve": "alert.resolved", "acknowledge": "alert.acknowledged",
               "window_started": "window.started", "window_ended": "window.ended"}


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; ValueError when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ + base64") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_KEY_BYTES}-{MAX_KEY_BYTES} bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def build_body(event: dict[str, Any]) -> dict[str, Any]:
    """{type, alert, service, occurred_at, run}; a window's announcement:
    {type, window: {window_id, reason, starts_at, ends_at}, service, occurred_at}."""
    if event.get("window"):
        return {"type": EVENT_TYPES[event["kind"]], "event_id": event["event_id"], "window": event["window"],
                "service": event["service"], "occurred_at": event.get("occurred_at")}
    return {
        "type": EVENT_TYPES[event["kind"]],
        "alert": {"alert_id": event["alert_id"], "event_id": event["event_id"],
                  "reason": event.get("reason"), "active": event["kind"] != "resolve",
                  "opened_at": event.get("opened_at"), "closed_at": event.get("closed_at")},
        "service": event["service"],
        "occurred_at": event.get("occurred_at"),
        # The job run behind the alert ({run_id, status, output: its first 1 KiB}), or null.
        "run": event.get("run"),
    }


def signed_headers(secret: str | None, message_id: str, body: bytes,
                   now: float | None = None) -> dict[str, str]:
    if not secret:
        return {}
    timestamp = int(time.time() if now is None else now)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body)}


def shown_url(url: str) -> str:
    """A URL without query or credentials (they may hold tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


class WebhookSender(Integration):
    """Sends to a notification target's ``config.url`` or, for a subscription
    (``webhook_id``), to the subscription's current URL."""
    target_type = "webhook"
    destination_field = "url"
    settings_fields = {"timeout": "delivery_http_timeout_seconds",
                       "allow_private": "webhook_allow_private"}

    def __init__(self, timeout: float, allow_private: bool):
        self.timeout = timeout
        self.allow_private = allow_private

    @classmethod
    def has_destination(cls, config: dict[str, Any], webhook_id: int | None) -> bool:
        return bool(webhook_id) or super().has_destination(config, webhook_id)

    @classmethod
    def destination_key(cls, config: dict[str, Any], webhook_id: int | None) -> str:
        url = config.get("url")
        if url:  # one host is one destination, whatever the path
            parts = urlsplit(url)
            return f"webhook:{parts.scheme}://{(parts.netloc.rsplit('@', 1)[-1]).lower()}"
        return f"webhook:#{webhook_id}"

    @classmethod
    def shown_destination(cls, config: dict[str, Any], webhook_id: int | None) -> str:
        return shown_url(config["url"]) if config.get("url") else f"webhook #{webhook_id}"

    def send(self, notification: Notification) -> AttemptResult:
        if notification.webhook_id is not None:
            if notification.webhook is None:
                return AttemptResult(Outcome.PERMANENT, error="webhook subscription deleted")
            if not notification.webhook.get("enabled", True):
                return AttemptResult(Outcome.PERMANENT, error="webhook subscription disabled")
            url = notification.webhook["url"]
            extra_headers = notification.webhook.get("headers") or {}
            secret = notification.webhook.get("secret")
        else:  # a notification target: unsigned (its config holds no secret)
            url = notification.config["url"]
            extra_headers = notification.config.get("headers") or {}
            secret = None
        try:
            ssrf.check_destination(url, allow_private=self.allow_private)
        except ssrf.UnresolvableHost as exc:
            return AttemptResult(Outcome.RETRYABLE, error=str(exc))
        except ssrf.UnsafeDestination as exc:
            return AttemptResult(Outcome.PERMANENT, error=f"refused: {exc}")
        body = json.dumps(build_body(notification.event), separators=(",", ":")).encode()
        headers = {str(k): str(v) for k, v in extra_headers.items()
                   if str(k).lower() not in RESERVED_HEADERS}
        headers["Content-Type"] = "application/json"
        # Unsigned webhooks still carry the id, so receivers can drop duplicates.
        headers["webhook-id"] = notification.idempotency_key
        headers.update(signed_headers(secret, notification.idempotency_key, body))
        _response, result = http.post(url, body, headers, self.timeout,
                                      public_only=not self.allow_private)
        return result
