"""Values passed between the delivery stages: plan -> claim -> send -> schedule -> record.

``TargetPlan`` is one target routing planned for an event, ``PlannedDelivery``
the outbox row made of it (``planning.py``). ``Notification`` is one claimed
delivery with everything a sender needs (no database access in senders);
``AttemptResult`` is what a sender says about one attempt: success, a retryable
failure or a permanent one. Senders decide *whether* a failure is retryable;
``retry.py`` decides *when*.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

# Tracking stores at most this much of a receiver's answer.
MAX_RESPONSE_BODY_BYTES = 4096


class Outcome(str, Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class TargetPlan(NamedTuple):
    """One target of an event, as routing planned it (a tuple: made for every
    target of every event enqueued)."""
    target_type: str
    config: dict[str, Any]
    target_id: int | None = None
    webhook_id: int | None = None
    # Subscriptions are always all sent; targets may be chained (until_success).
    is_subscription: bool = False


@dataclass(frozen=True)
class PlannedDelivery:
    """One row to enqueue for an event."""
    position: int
    target_type: str
    target_id: int | None
    webhook_id: int | None
    in_chain: bool
    config: dict[str, Any]
    destination_key: str
    idempotency_key: str
    due_now: bool


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    response_code: int = 0
    response_body: str = ""
    error: str = ""
    latency_ms: int = 0
    # Seconds the receiver asked us to wait (Retry-After), when it did.
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@dataclass(frozen=True)
class Notification:
    """One claimed delivery: where it goes and what it says."""
    delivery_id: int
    claim_token: str
    target_type: str  # slack | pagerduty | webhook
    config: dict[str, Any]
    # The alert event in domain form (see servicer.event_to_domain).
    event: dict[str, Any]
    idempotency_key: str
    destination_key: str
    round_attempts: int
    # Subscriptions: the webhook's current url / headers / secret (None: deleted).
    webhook: dict[str, Any] | None = None
    webhook_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def truncate_body(text: str) -> str:
    """The first 4096 bytes of a body, cut on a character boundary, without NUL
    characters (PostgreSQL text cannot hold them)."""
    text = text.replace("\x00", "")
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= MAX_RESPONSE_BODY_BYTES:
        return text
    return raw[:MAX_RESPONSE_BODY_BYTES].decode("utf-8", errors="ignore")


def config_json(value: Any) -> dict[str, Any]:
    """A JSONB column as a dict (psycopg2 decodes it; text is parsed)."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})
