"""The monitor: notices silence.

Each pass (every ``MEDIC_MONITOR_TICK_SECONDS``), in short transactions:

1. claims services whose ``deadline_at`` has passed (active, not down; the
   partial index makes this O(due services)) with ``FOR UPDATE SKIP LOCKED``,
   re-checks the down rule against ``heartbeat_events`` and opens an alert
   (``missed_heartbeats``) for each that is still overdue — or corrects a
   stale deadline;
2. makes the REMINDERs that are due on active alerts (skipped while muted);
3. lifts mutes older than ``MEDIC_MUTE_TTL_SECONDS``.

Any number of monitors may run on one database: row locks, SKIP LOCKED and the
unique partial index on active alerts keep them from doing anything twice.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from medic.db import Database
from medic.periodic import Periodic
from services.heartbeat import alerting, deadline as rule, metrics
from services.heartbeat.alerting import Changes, LifecyclePolicy

log = logging.getLogger(__name__)

CLAIM_DUE_SERVICES = """
    SELECT now() AS now, s.service_id, s.state, s.muted, s.threshold, s.activated_at,
           s.alert_interval_seconds, s.grace_period_seconds,
           ARRAY(SELECT h.time FROM heartbeat_events h
                 WHERE h.service_id = s.service_id AND h.status NOT IN ('FAILED', 'DOWN')
                   AND h.time >= s.activated_at
                 ORDER BY h.time DESC LIMIT s.threshold) AS recent
    FROM services s
    WHERE s.active AND s.state <> 'down' AND s.deadline_at <= now()
    ORDER BY s.deadline_at
    LIMIT %(batch)s
    FOR UPDATE OF s SKIP LOCKED
"""

FIX_DEADLINE = "UPDATE services SET deadline_at = %(deadline_at)s, recent_beats = %(recent)s WHERE service_id = %(service_id)s"

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

COUNT_DOWN = "SELECT count(*) AS n FROM services WHERE active AND state = 'down'"
# For the dashboard's "services by state"; a scan of `services`, so only every few seconds.
COUNT_BY_STATE = """
    SELECT CASE WHEN active THEN state ELSE 'inactive' END AS state, count(*) AS n
    FROM services GROUP BY 1
"""


class Monitor:
    def __init__(self, db: Database, *, policy: LifecyclePolicy, tick_seconds: float, batch: int,
                 mute_ttl_seconds: float, on_committed: Callable[[Changes], None]):
        self.db = db
        self.policy = policy
        self.tick_seconds = tick_seconds
        self.batch = batch
        self.mute_ttl_seconds = mute_ttl_seconds
        self.on_committed = on_committed
        self._loop = Periodic("monitor", self.tick, tick_seconds)
        self._last_gauge = 0.0

    # --- one pass -----------------------------------------------------------------

    def tick(self) -> Changes:
        """One monitor pass; returns what it changed."""
        changes = Changes()
        started = time.perf_counter()
        while True:  # a burst larger than one batch is drained in the same pass
            claimed = self._open_overdue(changes)
            if claimed < self.batch:
                break
        while self._make_reminders(changes) >= self.batch:
            pass
        self._expire_mutes()
        metrics.MONITOR_TICK_SECONDS.observe(time.perf_counter() - started)
        if time.monotonic() - self._last_gauge > 5:
            self._last_gauge = time.monotonic()
            metrics.SERVICES_DOWN.set(self.db.one(COUNT_DOWN)["n"])
            counts = {row["state"]: row["n"] for row in self.db.all(COUNT_BY_STATE)}
            for state in metrics.SERVICE_STATES:
                metrics.SERVICES_BY_STATE.labels(state).set(counts.get(state, 0))
        return changes

    def _open_overdue(self, changes: Changes) -> int:
        batch = Changes()
        with self.db.transaction() as tx:
            due = tx.all(CLAIM_DUE_SERVICES, {"batch": self.batch})
            metrics.DUE_BATCH_SIZE.observe(len(due))
            metrics.SERVICES_OVERDUE.set(len(due))
            for service in due:
                now: dt.datetime = service["now"]
                recent = list(service["recent"])
                deadline_at = rule.deadline(recent, service["threshold"], service["activated_at"],
                                            service["alert_interval_seconds"], service["grace_period_seconds"])
                if not rule.is_overdue(deadline_at, now):
                    # The stored deadline was stale (e.g. a threshold change raced a heartbeat).
                    tx.execute(FIX_DEADLINE, {"deadline_at": deadline_at, "recent": recent,
                                              "service_id": service["service_id"]})
                    continue
                alerting.open_alert(tx, self.policy, batch, service_id=service["service_id"],
                                    from_state=service["state"], reason="missed_heartbeats",
                                    muted=service["muted"], interval_seconds=service["alert_interval_seconds"],
                                    now=now)
        self._committed(batch, changes)
        return len(due)

    def _make_reminders(self, changes: Changes) -> int:
        batch = Changes()
        with self.db.transaction() as tx:
            due = tx.all(CLAIM_DUE_REMINDERS, {"batch": self.batch})
            for alert in due:
                now = alert["now"]
                reminders = alert["reminders"]
                if not alert["muted"]:
                    reminders += 1
                    alerting.enqueue(tx, alert["alert_id"], "reminder", now, seq=reminders)
                    batch.notifications += 1
                tx.execute(SCHEDULE_REMINDER, {
                    "alert_id": alert["alert_id"], "reminders": reminders,
                    "next": rule.reminder_after(now, alert["alert_interval_seconds"],
                                                self.policy.reminder_min_seconds)})
        self._committed(batch, changes)
        return len(due)

    def _expire_mutes(self) -> None:
        with self.db.transaction() as tx:
            for row in tx.all(EXPIRE_MUTES, {"ttl": self.mute_ttl_seconds}):
                alerting.record_transition(tx, row["service_id"], row["state"], row["state"],
                                           "mute_expired", row["now"])

    def _committed(self, batch: Changes, total: Changes) -> None:
        total.merge(batch)
        if batch.opened or batch.resolved or batch.notifications:
            self.on_committed(batch)

    # --- the loop -------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)
