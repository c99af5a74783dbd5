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

from medic import audit
from medic.db import Database, Row, Tx
from medic.errors import FailedPrecondition, NotFound
from services.heartbeat import lifecycle, outbox_store, service_counts
from services.heartbeat.lifecycle import (AlertChange, LifecyclePolicy, NotificationKind, Notify, Quiet,
                                          ServiceState, SkipReason, Transition, decide_notification)
from services.heartbeat.windows import Stretch
from services.heartbeat.status import FAILURE_STATUSES_PARAM

OPEN_ALERT = """
    INSERT INTO alerts (service_id, reason, opened_at, next_reminder_at, job_run_id, run_output)
    VALUES (%(service_id)s, %(reason)s, %(now)s, %(next_reminder_at)s, %(job_run_id)s, %(run_output)s)
    ON CONFLICT (service_id) WHERE active DO NOTHING
    RETURNING alert_id
"""

CLOSE_ALERT = """
    UPDATE alerts SET active = false, closed_at = %(now)s, next_reminder_at = NULL, suppressed_by = NULL
    WHERE service_id = %(service_id)s AND active
    RETURNING alert_id,
              EXISTS (SELECT 1 FROM alert_notifications n WHERE n.alert_id = alerts.alert_id) AS notified
"""

SET_STATE = "UPDATE services SET state = %(state)s WHERE service_id = %(service_id)s"

RECORD_TRANSITION = """
    INSERT INTO service_transitions (service_id, from_state, to_state, reason, alert_id, at, suppressed_by)
    VALUES (%(service_id)s, %(from_state)s, %(to_state)s, %(reason)s, %(alert_id)s, %(now)s, %(suppressed_by)s)
"""

RECORD_SKIP = """
    INSERT INTO notification_skips (alert_id, kind, reason, window_id, at)
    VALUES (%(alert_id)s, %(kind)s, %(reason)s, %(window_id)s, %(now)s)
"""

HOLD_BACK = """
    UPDATE alerts SET next_reminder_at = %(next_at)s, suppressed_by = %(window_id)s WHERE alert_id = %(alert_id)s
"""

# A mute without an end is lifted when the service recovers.
END_MUTE_ON_RECOVERY = """
    UPDATE services SET muted = false, muted_at = NULL, mute_reason = NULL, muted_by = NULL, updated_at = %(now)s
    WHERE service_id = %(service_id)s AND muted AND muted_until IS NULL
    RETURNING state
"""

LIST_TRANSITIONS = """
    SELECT transition_id, service_id, from_state, to_state, reason, alert_id, at, suppressed_by
    FROM service_transitions WHERE service_id = %s
    ORDER BY transition_id DESC LIMIT %s OFFSET %s
"""

LIST_ALERTS = """
    SELECT a.alert_id, a.service_id, s.heartbeat_name, s.service_name, a.reason, a.active,
           a.opened_at, a.closed_at, a.notification_count, a.acknowledged_at, a.acknowledged_by, a.suppressed_by
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE (%(active)s IS NULL OR a.active = %(active)s)
    ORDER BY a.alert_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
"""

# Services whose deadline has passed (through the partial index services_due_idx,
# which the literal state condition matches), with their latest counting
# heartbeats for the down rule's re-check.
CLAIM_DUE_SERVICES = f"""
    SELECT now() AS now, s.service_id, s.heartbeat_name, s.team, s.state, s.muted, s.threshold, s.activated_at,
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

# ``trigger_sent``: the alert's TRIGGER is in the outbox (a window or a mute may
# have held it back, and then it is what is due now).
CLAIM_DUE_REMINDERS = f"""
    SELECT now() AS now, a.alert_id, a.reminders, a.acknowledged_at IS NOT NULL AS acknowledged,
           s.service_id, s.heartbeat_name, s.team, s.state, s.muted, s.alert_interval_seconds,
           EXISTS (SELECT 1 FROM alert_notifications n
                   WHERE n.alert_id = a.alert_id AND n.kind = '{NotificationKind.TRIGGER}') AS trigger_sent
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE a.active AND a.next_reminder_at <= now()
    ORDER BY a.next_reminder_at
    LIMIT %(batch)s
    FOR UPDATE OF a SKIP LOCKED
"""

SCHEDULE_REMINDER = """
    UPDATE alerts SET next_reminder_at = %(next)s, reminders = %(reminders)s, suppressed_by = %(window_id)s
    WHERE alert_id = %(alert_id)s
"""

# A mute ends at its ``until``, and in any case MEDIC_MUTE_TTL_SECONDS after it began.
EXPIRE_MUTES = """
    WITH expired AS (
        SELECT service_id FROM services
        WHERE muted AND muted_at <= now() - make_interval(secs => %(ttl)s)
        UNION
        SELECT service_id FROM services WHERE muted AND muted_until <= now()
    ), locked AS (
        SELECT service_id FROM services WHERE service_id IN (SELECT service_id FROM expired)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE services s SET muted = false, muted_at = NULL, mute_reason = NULL, muted_by = NULL,
                          muted_until = NULL, updated_at = now()
    FROM locked WHERE s.service_id = locked.service_id
    RETURNING s.service_id, s.state, now() AS now
"""

SELECT_ALERT_FOR_ACK = """
    SELECT a.alert_id, a.service_id, a.active, a.acknowledged_at, s.state,
           EXISTS (SELECT 1 FROM alert_notifications n WHERE n.alert_id = a.alert_id) AS notified
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE a.alert_id = %(alert_id)s
    FOR UPDATE OF a
"""

ACKNOWLEDGE = """
    UPDATE alerts SET acknowledged_at = %(now)s, acknowledged_by = %(by)s WHERE alert_id = %(alert_id)s
"""

GET_ALERT = """
    SELECT a.alert_id, a.service_id, s.heartbeat_name, s.service_name, a.reason, a.active,
           a.opened_at, a.closed_at, a.notification_count, a.acknowledged_at, a.acknowledged_by, a.suppressed_by
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE a.alert_id = %s
"""

LIST_SKIPS = """
    SELECT k.skip_id, k.alert_id, a.service_id, k.kind, k.reason, k.window_id, k.at
    FROM notification_skips k JOIN alerts a ON a.alert_id = k.alert_id
    WHERE (%(alert_id)s = 0 OR k.alert_id = %(alert_id)s)
      AND (%(service_id)s = 0 OR a.service_id = %(service_id)s)
    ORDER BY k.skip_id DESC
    LIMIT %(limit)s
"""

# A deactivated service counts as inactive, whatever its state.
INACTIVE = "inactive"


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
    skipped: list[str] = field(default_factory=list)  # skip reasons
    unmuted: list[int] = field(default_factory=list)  # services whose mute ended on recovery

    def merge(self, other: "Changes") -> None:
        self.opened += other.opened
        self.resolved += other.resolved
        self.notifications += other.notifications
        self.skipped += other.skipped
        self.unmuted += other.unmuted


def record_transition(tx: Tx, service_id: int, transition: Transition, now: dt.datetime,
                      alert_id: int | None = None, suppressed_by: int | None = None) -> None:
    tx.execute(RECORD_TRANSITION, {"service_id": service_id, "from_state": transition.from_state,
                                   "to_state": transition.to_state, "reason": transition.reason,
                                   "alert_id": alert_id, "now": now, "suppressed_by": suppressed_by or None})


def record_skip(tx: Tx, changes: Changes, alert_id: int, kind: NotificationKind, notify: Notify,
                window_id: int, now: dt.datetime) -> None:
    """Records a notification that was not sent, with its one reason."""
    tx.execute(RECORD_SKIP, {"alert_id": alert_id, "kind": kind, "reason": notify.skip_reason,
                             "window_id": window_id or None if notify.skip_reason is SkipReason.WINDOW else None,
                             "now": now})
    changes.skipped.append(notify.skip_reason)


def queue_or_skip(tx: Tx, changes: Changes, alert_id: int, kind: NotificationKind, notify: Notify,
                  now: dt.datetime, window_id: int = 0) -> bool:
    """Queues the notification when ``notify`` sends it, or records why it is not
    sent; whether it was queued."""
    if notify.send:
        outbox_store.enqueue(tx, alert_id, kind, now)
        changes.notifications += 1
        return True
    record_skip(tx, changes, alert_id, kind, notify, window_id, now)
    return False


def execute(tx: Tx, policy: LifecyclePolicy, changes: Changes, service_id: int, transition: Transition, *,
            muted: bool, interval_seconds: int, now: dt.datetime, run: RunFacts | None = None,
            window: Stretch | None = None) -> None:
    """Carries out ``transition`` of service ``service_id`` (``muted`` and
    ``interval_seconds`` as they are after the change); an alert it opens is
    about ``run``, when given; ``window``: the maintenance window open for the
    service now, if any."""
    if transition.alert is AlertChange.OPEN:
        _open_alert(tx, policy, changes, service_id, transition, muted=muted,
                    interval_seconds=interval_seconds, now=now, run=run, window=window)
    elif transition.alert is AlertChange.CLOSE:
        _close_alert(tx, changes, service_id, transition, now=now)
    else:
        record_transition(tx, service_id, transition, now)


def _open_alert(tx: Tx, policy: LifecyclePolicy, changes: Changes, service_id: int, transition: Transition, *,
                muted: bool, interval_seconds: int, now: dt.datetime, run: RunFacts | None,
                window: Stretch | None) -> None:
    """Opens an alert and marks the service down. When the service has an active
    alert already, it stays the one: nothing else is written. A TRIGGER a window
    holds back is due again when the window ends."""
    row = tx.one(OPEN_ALERT, {"service_id": service_id, "reason": transition.reason, "now": now,
                              "next_reminder_at": policy.next_reminder_at(now, interval_seconds),
                              "job_run_id": run.job_run_id if run else None,
                              "run_output": run.output if run else None})
    tx.execute(SET_STATE, {"service_id": service_id, "state": transition.to_state})
    if row is None:
        return
    alert_id = row["alert_id"]
    window_id = window.window_id if window else 0
    notify = decide_notification(NotificationKind.TRIGGER, Quiet(window=window_id, muted=muted))
    record_transition(tx, service_id, transition, now, alert_id,
                      suppressed_by=window_id if notify.skip_reason is SkipReason.WINDOW else None)
    changes.opened.append(transition.reason)
    if queue_or_skip(tx, changes, alert_id, NotificationKind.TRIGGER, notify, now, window_id):
        return
    if notify.skip_reason is SkipReason.WINDOW:
        tx.execute(HOLD_BACK, {"alert_id": alert_id, "window_id": window_id,
                               "next_at": lifecycle.held_back(notify, window.end if window else None, now,
                                                              interval_seconds, policy)})


def _close_alert(tx: Tx, changes: Changes, service_id: int, transition: Transition, *, now: dt.datetime) -> None:
    """Closes the service's active alert, if any, and records the transition. A
    recovery ends a mute that has no end of its own."""
    row = tx.one(CLOSE_ALERT, {"service_id": service_id, "now": now})
    alert_id = row["alert_id"] if row else None
    record_transition(tx, service_id, transition, now, alert_id)
    if transition.reason in lifecycle.RECOVERY:
        unmuted = tx.one(END_MUTE_ON_RECOVERY, {"service_id": service_id, "now": now})
        if unmuted is not None:
            record_transition(tx, service_id, lifecycle.mute_ended(transition.to_state), now, alert_id)
            changes.unmuted.append(service_id)
    if row is None:
        return
    changes.resolved.append(transition.reason)
    notify = decide_notification(NotificationKind.RESOLVE, Quiet(alert_notified=row["notified"]))
    queue_or_skip(tx, changes, alert_id, NotificationKind.RESOLVE, notify, now)


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

    def get_alert(self, alert_id: int) -> Row:
        row = self.db.one(GET_ALERT, (alert_id,))
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        return row

    def acknowledge(self, alert_id: int, by: str, on_committed=lambda changes: None) -> Row:
        """Acknowledges an open alert (once): no more reminders; the PagerDuty
        targets that got its TRIGGER hear of it (an ``acknowledge``
        notification, when anybody was told of the alert)."""
        changes = Changes()
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            alert = tx.one(SELECT_ALERT_FOR_ACK, {"alert_id": alert_id})
            if alert is None:
                raise NotFound(f"alert {alert_id} does not exist")
            if not alert["active"]:
                raise FailedPrecondition(f"alert {alert_id} is closed; only an open alert can be acknowledged")
            if alert["acknowledged_at"] is None:
                tx.execute(ACKNOWLEDGE, {"alert_id": alert_id, "by": by, "now": now})
                audit.record(tx, source="heartbeat", action_type="acknowledge", resource="alert",
                             resource_id=alert_id, service_id=alert["service_id"],
                             before={"acknowledged_at": None},
                             after={"acknowledged_at": now, "acknowledged_by": by})
                record_transition(tx, alert["service_id"], lifecycle.acknowledged(alert["state"]), now, alert_id)
                notify = decide_notification(NotificationKind.ACKNOWLEDGE, Quiet(alert_notified=alert["notified"]))
                queue_or_skip(tx, changes, alert_id, NotificationKind.ACKNOWLEDGE, notify, now)
        on_committed(changes)
        return self.get_alert(alert_id)

    def list_skips(self, *, alert_id: int, service_id: int, limit: int) -> list[Row]:
        return self.db.all(LIST_SKIPS, {"alert_id": alert_id, "service_id": service_id, "limit": limit})

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
    def schedule_reminder(tx: Tx, alert_id: int, reminders: int, next_at: dt.datetime,
                          window_id: int = 0) -> None:
        tx.execute(SCHEDULE_REMINDER, {"alert_id": alert_id, "reminders": reminders, "next": next_at,
                                       "window_id": window_id or None})

    def expire_mutes(self, ttl_seconds: float) -> None:
        """Lifts the mutes older than ``ttl_seconds``, each with its transition."""
        with self.db.transaction() as tx:
            for row in tx.all(EXPIRE_MUTES, {"ttl": ttl_seconds}):
                record_transition(tx, row["service_id"], lifecycle.mute_expired(row["state"]), row["now"])

    def count_by_state(self) -> dict[str, int]:
        """Active services in each state (new, up, down) and inactive ones, from the
        kept counts (``service_counts``)."""
        counts = service_counts.read(self.db)
        return {state: counts[state] for state in (*ServiceState, INACTIVE)}
