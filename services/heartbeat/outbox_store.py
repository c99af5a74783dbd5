"""The hand-off outbox: ``alert_notifications``.

Every TRIGGER, REMINDER and RESOLVE is written here (``enqueue``) in the
transaction that made it, and so is each announcement of a maintenance window
(``announcements.py``: a row of no alert, naming its service and window); the hand-off workers (``handoff.py``) claim due rows,
hand them to routing and mark each accepted one handed off, or schedule its
retry.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from medic import tracing
from medic.db import Database, Row, Tx
from services.heartbeat.lifecycle import NotificationKind

# The same event goes to the remediation service's outbox (``remediation_handoffs``),
# in the same statement: handed off apart, so neither waits for the other.
ENQUEUE_NOTIFICATION = """
    WITH n AS (
        INSERT INTO alert_notifications (alert_id, kind, event_id, occurred_at, due_at)
        VALUES (%(alert_id)s, %(kind)s, %(event_id)s, %(now)s, %(now)s)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING notification_id, alert_id
    )
    INSERT INTO remediation_handoffs (notification_id, alert_id, due_at)
    SELECT notification_id, alert_id, %(now)s FROM n
"""

# Claims due rows with a lease: their ``due_at`` moves into the future, so a worker
# that dies mid-call has its rows taken over once the lease ends. A row waits while
# an earlier one of the same alert is pending, so routing sees TRIGGER before
# REMINDERs before RESOLVE.
CLAIM_NOTIFICATIONS = """
    WITH claimed AS (
        SELECT n.notification_id FROM alert_notifications n
        WHERE n.handed_off_at IS NULL AND n.due_at <= now()
          AND NOT EXISTS (SELECT 1 FROM alert_notifications p
                          WHERE p.alert_id = n.alert_id AND p.notification_id < n.notification_id
                            AND p.handed_off_at IS NULL)
        ORDER BY n.notification_id
        LIMIT %(batch)s
        FOR UPDATE OF n SKIP LOCKED
    )
    UPDATE alert_notifications n
    SET due_at = now() + make_interval(secs => %(lease)s), attempts = n.attempts + 1
    FROM claimed WHERE n.notification_id = claimed.notification_id
    RETURNING n.notification_id, n.attempts
"""

# A window's announcement (no alert) names its service and window itself.
NOTIFICATION_DETAILS = """
    SELECT n.notification_id, n.kind, n.event_id, n.occurred_at, n.attempts,
           a.alert_id, a.reason, a.opened_at, a.closed_at,
           s.service_id, s.heartbeat_name, s.service_name, s.team, s.team_id, s.priority, s.runbook,
           s.notify_mode, s.last_heartbeat_at, s.alert_interval_seconds,
           a.job_run_id, a.run_output, r.run_id, r.status AS run_status,
           n.window_id, n.window_reason, n.window_starts_at, n.window_ends_at
    FROM alert_notifications n
    LEFT JOIN alerts a ON a.alert_id = n.alert_id
    JOIN services s ON s.service_id = coalesce(a.service_id, n.service_id)
    LEFT JOIN job_runs r ON r.job_run_id = a.job_run_id
    WHERE n.notification_id = ANY(%(ids)s)
    ORDER BY n.notification_id
"""

# An alert's notification_count counts the TRIGGER and REMINDERs handed off.
MARK_HANDED_OFF = f"""
    WITH done AS (
        UPDATE alert_notifications SET handed_off_at = now(), last_error = NULL
        WHERE notification_id = ANY(%(ids)s) AND handed_off_at IS NULL
        RETURNING alert_id, kind
    ), counted AS (
        SELECT alert_id, count(*) AS n FROM done
        WHERE kind IN ('{NotificationKind.TRIGGER}', '{NotificationKind.REMINDER}') GROUP BY alert_id
    )
    UPDATE alerts a SET notification_count = a.notification_count + counted.n
    FROM counted WHERE a.alert_id = counted.alert_id
"""

SCHEDULE_RETRIES = """
    UPDATE alert_notifications n
    SET due_at = now() + make_interval(secs => r.delay), last_error = r.error
    FROM (VALUES %s) AS r (notification_id, delay, error)
    WHERE n.notification_id = r.notification_id AND n.handed_off_at IS NULL
"""
RETRY_TEMPLATE = "(%s, %s::float8, %s)"

BACKLOG = """
    SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest
    FROM alert_notifications WHERE handed_off_at IS NULL
"""


def event_id(alert_id: int, kind: NotificationKind, seq: int | None = None) -> str:
    """The notification's id for routing and delivery, which deduplicate on it."""
    return f"alert-{alert_id}-{kind}" + (f"-{seq}" if seq is not None else "")


def enqueue(tx: Tx, alert_id: int, kind: NotificationKind, now: dt.datetime, seq: int | None = None) -> None:
    event = event_id(alert_id, kind, seq)
    tx.execute(ENQUEUE_NOTIFICATION, {"alert_id": alert_id, "kind": kind, "event_id": event, "now": now})
    tracing.remember(event)  # the hand-off continues this trace


class OutboxStore:
    """The outbox of the hand-off to routing (``alert_notifications``)."""

    claim_sql = CLAIM_NOTIFICATIONS
    mark_sql = MARK_HANDED_OFF
    retries_sql = SCHEDULE_RETRIES
    backlog_sql = BACKLOG

    def __init__(self, db: Database):
        self.db = db

    def claim(self, batch: int, lease_seconds: float) -> list[Row]:
        """Leases up to ``batch`` due notifications; their details, oldest first
        (``attempts``: this outbox's count, the one claimed now included)."""
        with self.db.transaction() as tx:
            claimed = {r["notification_id"]: r["attempts"] for r in tx.all(
                self.claim_sql, {"batch": batch, "lease": lease_seconds})}
        if not claimed:
            return []
        rows = self.db.all(NOTIFICATION_DETAILS, {"ids": list(claimed)})
        return [{**row, "attempts": claimed[row["notification_id"]]} for row in rows]

    def mark_handed_off(self, notification_ids: Sequence[int]) -> None:
        self.db.execute(self.mark_sql, {"ids": list(notification_ids)})

    def schedule_retries(self, retries: Sequence[tuple[int, float, str]]) -> None:
        """(notification id, seconds until it is due again, the error) for each."""
        with self.db.transaction() as tx:
            tx.values(self.retries_sql, retries, template=RETRY_TEMPLATE)

    def backlog(self) -> Row:
        """``pending``: notifications not yet handed off; ``oldest``: the oldest one's age in seconds."""
        return self.db.one(self.backlog_sql)


class RemediationOutboxStore(OutboxStore):
    """The outbox of the hand-off to remediation (``remediation_handoffs``): the
    same notifications, claimed, retried and marked apart from routing's."""

    claim_sql = CLAIM_NOTIFICATIONS.replace("alert_notifications", "remediation_handoffs")
    mark_sql = """
        UPDATE remediation_handoffs SET handed_off_at = now(), last_error = NULL
        WHERE notification_id = ANY(%(ids)s) AND handed_off_at IS NULL
    """
    retries_sql = SCHEDULE_RETRIES.replace("alert_notifications", "remediation_handoffs")
    backlog_sql = BACKLOG.replace("alert_notifications", "remediation_handoffs")
