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

from medic import ssrf
from services.delivery import http
from services.delivery.model import EVENT_TYPES, AttemptResult, Notification, Outcome

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
# Headers Medic sets itself; a target's headers cannot replace them.
RESERVED_HEADERS = {"content-type", "content-length", "host", "webhook-id", "webhook-timestamp",
                    "webhook-signature"}


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
    """{type, alert, service, occurred_at}."""
    return {
        "type": EVENT_TYPES[event["kind"]],
        "alert": {"alert_id": event["alert_id"], "event_id": event["event_id"],
                  "reason": event.get("reason"), "active": event["kind"] != "resolve",
                  "opened_at": event.get("opened_at"), "closed_at": event.get("closed_at")},
        "service": event["service"],
        "occurred_at": event.get("occurred_at"),
    }


def signed_headers(secret: str | None, message_id: str, body: bytes,
                   now: float | None = None) -> dict[str, str]:
    if not secret:
        return {}
    timestamp = int(time.time() if now is None else now)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body)}


class WebhookSender:
    def __init__(self, timeout: float, allow_private: bool):
        self.timeout = timeout
        self.allow_private = allow_private

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
