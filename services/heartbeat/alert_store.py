"""The alert lifecycle's tables: ``alerts`` and ``service_transitions``, with the
``state`` (and mute) columns of ``services`` that go with them, and the monitor's
claims on them.

``execute`` carries out a ``lifecycle.Transition`` inside the caller's
transaction (the ingest's, a service update's, the monitor's): the alert row,
the service's state, the transition row and, when ``lifecycle.decide_notification``
says so, a notification in the outbox that the hand-off later passes to routing.
The unique partial index on active alerts makes a second active alert for a
service impossible, however many processes try.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from medic.db import Database, Row, Tx
from services.heartbeat import lifecycle, outbox_store
from services.heartbeat.lifecycle import (AlertChange, LifecyclePolicy, NotificationKind, ServiceState,
                                          Transition)
from services.heartbeat.status import FAILURE_STATUSES_PARAM

OPEN_ALERT = """
    INSERT INTO alerts (service_id, reason, opened_at, next_reminder_at, job_run_id, run_output)
    VALUES (%(service_id)s, %(reason)s, %(now)s, %(next_reminder_at)s, %(job_run_id)s, %(run_output)s)
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

LIST_TRANSITIONS = """
    SELECT transition_id, service_id, from_state, to_state, reason, alert_id, at
    FROM service_transitions WHERE service_id = %s
    ORDER BY transition_id DESC LIMIT %s OFFSET %s
"""

LIST_ALERTS = """
    SELECT a.alert_id, a.service_id, s.heartbeat_name, s.service_name, a.reason, a.active,
           a.opened_at, a.closed_at, a.notification_count
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE (%(active)s IS NULL OR a.active = %(active)s)
    ORDER BY a.alert_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
"""

# Services whose deadline has passed (through the partial index services_due_idx,
# which the literal state condition matches), with their latest counting
# heartbeats for the down rule's re-check.
CLAIM_DUE_SERVICES = f"""
    SELECT now() AS now, s.service_id, s.state, s.muted, s.threshold, s.activated_at,
           s.alert_interval_seconds, s.grace_period_seconds, s.schedule, s.timezone,
           ARRAY(SELECT h.time FROM heartbeat_events h
                 WHERE h.service_id = s.service_id AND h.status <> ALL(%(failure_statuses)s)
                   AND h.time >= s.activated_at
                 ORDER BY h.time DESC LIMIT s.threshold) AS recent
    FROM services s
    WHERE s.active AND s.state <> '{lifecycle.NOT_WATCHED}' AND s.deadline_at <= now()
    ORDER BY s.deadline_at
    LIMIT %(batch)s
    FOR UPDATE OF s SKIP LOCKED
"""

FIX_DEADLINE = ("UPDATE services SET deadline_at = %(deadline_at)s, recent_beats = %(recent)s"
                " WHERE service_id = %(service_id)s")

CLAIM_DUE_REMINDERS = """
    SELECT now() AS now, a.alert_id, a.reminders, s.muted, s.alert_interval_seconds
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE a.active AND a.next_reminder_at <= now()
    ORDER BY a.next_reminder_at
    LIMIT %(batch)s
    FOR UPDATE OF a SKIP LOCKED
"""

SCHEDULE_REMINDER = """
    UPDATE alerts SET next_reminder_at = %(next)s, reminders = %(reminders)s WHERE alert_id = %(alert_id)s
"""

EXPIRE_MUTES = """
    WITH expired AS (
        SELECT service_id FROM services
        WHERE muted AND muted_at <= now() - make_interval(secs => %(ttl)s)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE services s SET muted = false, muted_at = NULL, updated_at = now()
    FROM expired WHERE s.service_id = expired.service_id
    RETURNING s.service_id, s.state, now() AS now
"""

COUNT_DOWN = f"SELECT count(*) AS n FROM services WHERE active AND state = '{ServiceState.DOWN}'"
# A deactivated service counts as inactive, whatever its state.
INACTIVE = "inactive"
COUNT_BY_STATE = f"""
    SELECT CASE WHEN active THEN state ELSE '{INACTIVE}' END AS state, count(*) AS n
    FROM services GROUP BY 1
"""


class RunFacts(NamedTuple):
    """The job run a transition is about (its alert carries them to the notifications)."""
    job_run_id: int
    run_id: str | None
    status: str
    output: str | None  # the first 1 KiB of the run's output


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


def record_transition(tx: Tx, service_id: int, transition: Transition, now: dt.datetime,
                      alert_id: int | None = None) -> None:
    tx.execute(RECORD_TRANSITION, {"service_id": service_id, "from_state": transition.from_state,
                                   "to_state": transition.to_state, "reason": transition.reason,
                                   "alert_id": alert_id, "now": now})


def execute(tx: Tx, policy: LifecyclePolicy, changes: Changes, service_id: int, transition: Transition, *,
            muted: bool, interval_seconds: int, now: dt.datetime, run: RunFacts | None = None) -> None:
    """Carries out ``transition`` of service ``service_id`` (``muted`` and
    ``interval_seconds`` as they are after the change); an alert it opens is
    about ``run``, when given."""
    if transition.alert is AlertChange.OPEN:
        _open_alert(tx, policy, changes, service_id, transition, muted=muted,
                    interval_seconds=interval_seconds, now=now, run=run)
    elif transition.alert is AlertChange.CLOSE:
        _close_alert(tx, changes, service_id, transition, muted=muted, now=now)
    else:
        record_transition(tx, service_id, transition, now)


def _open_alert(tx: Tx, policy: LifecyclePolicy, changes: Changes, service_id: int, transition: Transition, *,
                muted: bool, interval_seconds: int, now: dt.datetime, run: RunFacts | None) -> None:
    """Opens an alert and marks the service down. When the service has an active
    alert already, it stays the one: nothing else is written."""
    row = tx.one(OPEN_ALERT, {"service_id": service_id, "reason": transition.reason, "now": now,
                              "next_reminder_at": policy.next_reminder_at(now, interval_seconds),
                              "job_run_id": run.job_run_id if run else None,
                              "run_output": run.output if run else None})
    tx.execute(SET_STATE, {"service_id": service_id, "state": transition.to_state})
    if row is None:
        return
    alert_id = row["alert_id"]
    record_transition(tx, service_id, transition, now, alert_id)
    changes.opened.append(transition.reason)
    if lifecycle.decide_notification(NotificationKind.TRIGGER, muted=muted).send:
        outbox_store.enqueue(tx, alert_id, NotificationKind.TRIGGER, now)
        changes.notifications += 1


def _close_alert(tx: Tx, changes: Changes, service_id: int, transition: Transition, *,
                 muted: bool, now: dt.datetime) -> None:
    """Closes the service's active alert, if any, and records the transition."""
    row = tx.one(CLOSE_ALERT, {"service_id": service_id, "now": now})
    alert_id = row["alert_id"] if row else None
    record_transition(tx, service_id, transition, now, alert_id)
    if row is None:
        return
    changes.resolved.append(transition.reason)
    if lifecycle.decide_notification(NotificationKind.RESOLVE, muted=muted, alert_notified=row["notified"]).send:
        outbox_store.enqueue(tx, alert_id, NotificationKind.RESOLVE, now)
        changes.notifications += 1


def list_transitions(tx: Tx, service_id: int, limit: int, offset: int = 0) -> list[Row]:
    return tx.all(LIST_TRANSITIONS, (service_id, limit, offset))


class AlertStore:
    """The monitor's work (overdue services, due reminders, expired mutes) and the
    alert listing."""

    def __init__(self, db: Database, policy: LifecyclePolicy = LifecyclePolicy()):
        self.db = db
        self.policy = policy

    def list_alerts(self, active: bool | None, limit: int, offset: int = 0) -> list[Row]:
        return self.db.all(LIST_ALERTS, {"active": active, "limit": limit, "offset": offset})

    def claim_overdue(self, tx: Tx, batch: int) -> list[Row]:
        """Up to ``batch`` active services not down whose deadline has passed,
        locked (skipping those another monitor holds), with ``recent``: their
        latest counting heartbeat times, newest first."""
        return tx.all(CLAIM_DUE_SERVICES, {"batch": batch, "failure_statuses": FAILURE_STATUSES_PARAM})

    @staticmethod
    def fix_deadline(tx: Tx, service_id: int, deadline_at: dt.datetime, recent: Sequence[dt.datetime]) -> None:
        tx.execute(FIX_DEADLINE, {"deadline_at": deadline_at, "recent": list(recent),
                                  "service_id": service_id})

    def claim_due_reminders(self, tx: Tx, batch: int) -> list[Row]:
        return tx.all(CLAIM_DUE_REMINDERS, {"batch": batch})

    @staticmethod
    def schedule_reminder(tx: Tx, alert_id: int, reminders: int, next_at: dt.datetime) -> None:
        tx.execute(SCHEDULE_REMINDER, {"alert_id": alert_id, "reminders": reminders, "next": next_at})

    def expire_mutes(self, ttl_seconds: float) -> None:
        """Lifts the mutes older than ``ttl_seconds``, each with its transition."""
        with self.db.transaction() as tx:
            for row in tx.all(EXPIRE_MUTES, {"ttl": ttl_seconds}):
                record_transition(tx, row["service_id"], lifecycle.mute_expired(row["state"]), row["now"])

    def count_down(self) -> int:
        return self.db.one(COUNT_DOWN)["n"]

    def count_by_state(self) -> dict[str, int]:
        """Services in each state (new, up, down) and inactive ones, 0 for none. A scan
        of ``services``: the monitor counts only every few seconds, for the dashboard."""
        counts = {row["state"]: row["n"] for row in self.db.all(COUNT_BY_STATE)}
        return {state: counts.get(state, 0) for state in (*ServiceState, INACTIVE)}
