"""Opening and closing alerts, inside the caller's transaction.

Used by the heartbeat path (reported failures, recoveries), by service
updates (deactivation, manual down/up) and by the monitor (missed
heartbeats). Each change writes, in the same transaction: the alert row, the
service's state, a row in ``service_transitions`` and, for notifications, a
row in the ``alert_notifications`` outbox that the hand-off dispatcher later
passes to routing. The unique partial index on active alerts makes a second
active alert for a service impossible, however many processes try.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from medic import tracing
from medic.db import Tx
from services.heartbeat import deadline as rule

OPEN_ALERT = """
    INSERT INTO alerts (service_id, reason, opened_at, next_reminder_at)
    VALUES (%(service_id)s, %(reason)s, %(now)s, %(next_reminder_at)s)
    ON CONFLICT (service_id) WHERE active DO NOTHING
    RETURNING alert_id
"""

CLOSE_ALERT = """
    UPDATE alerts SET active = false, closed_at = %(now)s, next_reminder_at = NULL
    WHERE service_id = %(service_id)s AND active
    RETURNING alert_id,
              EXISTS (SELECT 1 FROM alert_notifications n WHERE n.alert_id = alerts.alert_id) AS notified
"""

SET_STATE = "UPDATE services SET state = %(state)s WHERE service_id = %(service_id)s"

RECORD_TRANSITION = """
    INSERT INTO service_transitions (service_id, from_state, to_state, reason, alert_id, at)
    VALUES (%(service_id)s, %(from_state)s, %(to_state)s, %(reason)s, %(alert_id)s, %(now)s)
"""

ENQUEUE_NOTIFICATION = """
    INSERT INTO alert_notifications (alert_id, kind, event_id, occurred_at, due_at)
    VALUES (%(alert_id)s, %(kind)s, %(event_id)s, %(now)s, %(now)s)
    ON CONFLICT (event_id) DO NOTHING
"""


@dataclass(frozen=True)
class LifecyclePolicy:
    # REMINDERs come every alert_interval, but never closer than this.
    reminder_min_seconds: float = 60.0


@dataclass
class Changes:
    """What a transaction did, for metrics and wake-ups once it has committed."""
    opened: list[str] = field(default_factory=list)    # reasons
    resolved: list[str] = field(default_factory=list)  # reasons
    notifications: int = 0

    def merge(self, other: "Changes") -> None:
        self.opened += other.opened
        self.resolved += other.resolved
        self.notifications += other.notifications


def event_id(alert_id: int, kind: str, seq: int | None = None) -> str:
    return f"alert-{alert_id}-{kind}" + (f"-{seq}" if seq is not None else "")


def record_transition(tx: Tx, service_id: int, from_state: str, to_state: str, reason: str,
                      now: dt.datetime, alert_id: int | None = None) -> None:
    tx.execute(RECORD_TRANSITION, {"service_id": service_id, "from_state": from_state,
                                   "to_state": to_state, "reason": reason, "alert_id": alert_id,
                                   "now": now})


def enqueue(tx: Tx, alert_id: int, kind: str, now: dt.datetime, seq: int | None = None) -> None:
    event = event_id(alert_id, kind, seq)
    tx.execute(ENQUEUE_NOTIFICATION, {"alert_id": alert_id, "kind": kind, "event_id": event, "now": now})
    tracing.remember(event)  # the hand-off continues this trace


def open_alert(tx: Tx, policy: LifecyclePolicy, changes: Changes, *, service_id: int, from_state: str,
               reason: str, muted: bool, interval_seconds: int, now: dt.datetime) -> int | None:
    """Opens an alert and marks the service down; a TRIGGER unless muted.
    Returns the alert id, or None when the service already had an active alert."""
    row = tx.one(OPEN_ALERT, {"service_id": service_id, "reason": reason, "now": now,
                              "next_reminder_at": rule.reminder_after(now, interval_seconds,
                                                                      policy.reminder_min_seconds)})
    tx.execute(SET_STATE, {"service_id": service_id, "state": "down"})
    if row is None:
        return None
    alert_id = row["alert_id"]
    record_transition(tx, service_id, from_state, "down", reason, now, alert_id)
    changes.opened.append(reason)
    if not muted:
        enqueue(tx, alert_id, "trigger", now)
        changes.notifications += 1
    return alert_id


def close_alert(tx: Tx, changes: Changes, *, service_id: int, from_state: str, to_state: str,
                reason: str, now: dt.datetime, record_always: bool = False) -> int | None:
    """Closes the service's active alert, if any. A RESOLVE goes to whoever was
    notified of the alert (muted or not: an open incident elsewhere must close).
    The transition is recorded when the state changes or an alert closes (or always)."""
    row = tx.one(CLOSE_ALERT, {"service_id": service_id, "now": now})
    alert_id = row["alert_id"] if row else None
    if record_always or from_state != to_state or alert_id is not None:
        record_transition(tx, service_id, from_state, to_state, reason, now, alert_id)
    if row is None:
        return None
    changes.resolved.append(reason)
    if row["notified"]:
        enqueue(tx, alert_id, "resolve", now)
        changes.notifications += 1
    return alert_id
