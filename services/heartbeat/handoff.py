"""The durable hand-off of alert notifications to routing.

``alert_notifications`` is the outbox: every TRIGGER, REMINDER and RESOLVE is
written there in the transaction that made it. Worker threads claim due rows
(``FOR UPDATE SKIP LOCKED``, then a lease: the row's ``due_at`` moves into the
future, so a worker that dies mid-call has its row taken over by any monitor
once the lease ends), build the ``AlertEvent`` from the alert and service rows,
and hand a worker's whole claim to routing in one ``RoutingService.RouteAlerts``
call. Only an event routing accepted marks its row handed off; any failure (routing or delivery down, a timeout) schedules a
retry with a growing pause, capped at a few seconds so that notifications
follow within seconds when routing comes back. Routing and delivery deduplicate on the event id,
so a retry after a lost answer sends nothing twice.

A notification waits while an earlier one of the same alert is pending, so
routing always sees TRIGGER before REMINDERs before RESOLVE.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from medic import tracing
from medic.db import Database, Row
from medic.errors import MedicError
from medic.timestamps import to_timestamp
from medic.v1 import events_pb2, routing_pb2
from services.heartbeat import metrics
from services.heartbeat.servicer import NOTIFY_MODE_FROM_DB, PRIORITY_FROM_DB, REASON_FROM_DB

log = logging.getLogger(__name__)

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
    RETURNING n.notification_id
"""

NOTIFICATION_DETAILS = """
    SELECT n.notification_id, n.kind, n.event_id, n.occurred_at, n.attempts,
           a.alert_id, a.reason, a.opened_at, a.closed_at,
           s.service_id, s.heartbeat_name, s.service_name, s.team, s.team_id, s.priority, s.runbook,
           s.notify_mode, s.last_heartbeat_at, s.alert_interval_seconds
    FROM alert_notifications n
    JOIN alerts a ON a.alert_id = n.alert_id
    JOIN services s ON s.service_id = a.service_id
    WHERE n.notification_id = ANY(%(ids)s)
    ORDER BY n.notification_id
"""

MARK_HANDED_OFF = """
    WITH done AS (
        UPDATE alert_notifications SET handed_off_at = now(), last_error = NULL
        WHERE notification_id = ANY(%(ids)s) AND handed_off_at IS NULL
        RETURNING alert_id, kind
    ), counted AS (
        SELECT alert_id, count(*) AS n FROM done WHERE kind <> 'resolve' GROUP BY alert_id
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

KINDS = {"trigger": events_pb2.ALERT_EVENT_KIND_TRIGGER, "reminder": events_pb2.ALERT_EVENT_KIND_REMINDER,
         "resolve": events_pb2.ALERT_EVENT_KIND_RESOLVE}
MAX_RETRY_DELAY = 5.0
BACKLOG_EVERY_SECONDS = 2.0


def alert_event(row: Row) -> events_pb2.AlertEvent:
    """The event routing needs, with every service fact it uses."""
    return events_pb2.AlertEvent(
        event_id=row["event_id"], kind=KINDS[row["kind"]], alert_id=row["alert_id"],
        reason=REASON_FROM_DB[row["reason"]],
        service=events_pb2.ServiceFacts(
            service_id=row["service_id"], heartbeat_name=row["heartbeat_name"],
            service_name=row["service_name"], team=row["team"], team_id=row["team_id"] or 0,
            priority=PRIORITY_FROM_DB[row["priority"]], runbook=row["runbook"] or "",
            notify_mode=NOTIFY_MODE_FROM_DB[row["notify_mode"]],
            last_heartbeat_at=to_timestamp(row["last_heartbeat_at"]),
            alert_interval_seconds=row["alert_interval_seconds"]),
        opened_at=to_timestamp(row["opened_at"]), closed_at=to_timestamp(row["closed_at"]), occurred_at=to_timestamp(row["occurred_at"]))


CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def retry_delay(attempts: int) -> float:
    return min(0.5 * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY)


class Dispatcher:
    """``route_alerts`` makes a RouteAlerts call (``stub.RouteAlerts`` with a
    deadline): one per worker and claim."""

    def __init__(self, db: Database,
                 route_alerts: Callable[[routing_pb2.RouteAlertsRequest], routing_pb2.RouteAlertsResponse], *,
                 workers: int = 8, lease_seconds: float = 30.0, poll_seconds: float = 0.2,
                 batch: int = 32):
        self.db = db
        self.route_alerts = route_alerts
        self.batch = batch
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        """New notifications were committed by this process: hand them off now."""
        with self._wake:
            self._pending_wakes = self.workers
            self._wake.notify_all()

    def dispatch_once(self, batch: int | None = None) -> int:
        """Claims up to ``batch`` notifications, hands them to routing in one call
        and records each outcome; returns how many were claimed."""
        with self.db.transaction() as tx:
            ids = [r["notification_id"] for r in tx.all(
                CLAIM_NOTIFICATIONS, {"batch": batch or self.batch, "lease": self.lease_seconds})]
        if not ids:
            return 0
        rows = self.db.all(NOTIFICATION_DETAILS, {"ids": ids})
        accepted, retries = [], []
        try:
            with tracing.span("alert hand-off", keys=[row["event_id"] for row in rows],
                              attributes={"medic.event_id": [row["event_id"] for row in rows]}):
                response = self.route_alerts(routing_pb2.RouteAlertsRequest(
                    requests=[routing_pb2.RouteAlertRequest(event=alert_event(row)) for row in rows]))
        except grpc.RpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"
            retries = [self._retry(row, error) for row in rows]
        else:
            for row, result in zip(rows, response.results):
                if result.code == grpc.StatusCode.OK.value[0]:
                    accepted.append(row)
                else:
                    retries.append(self._retry(row, f"{CODE_NAMES.get(result.code, result.code)}: {result.message}"))
        if retries:
            with self.db.transaction() as tx:
                tx.values(SCHEDULE_RETRIES, retries, template=RETRY_TEMPLATE)
        if accepted:
            self.db.execute(MARK_HANDED_OFF, {"ids": [row["notification_id"] for row in accepted]})
            for row in accepted:
                metrics.HANDOFFS.labels(row["kind"], "accepted").inc()
        return len(rows)

    def _retry(self, row: Row, error: str) -> tuple[int, float, str]:
        delay = retry_delay(row["attempts"])
        log.warning("hand-off of %s failed (%s); retrying in %.1f s", row["event_id"], error, delay)
        metrics.HANDOFFS.labels(row["kind"], "retry").inc()
        return row["notification_id"], delay, error[:500]

    def measure_backlog(self) -> None:
        row = self.db.one(BACKLOG)
        metrics.HANDOFF_BACKLOG.set(row["pending"])
        metrics.HANDOFF_OLDEST_SECONDS.set(float(row["oldest"]))

    # --- threads ------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._run, args=(n,), name=f"handoff-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, number: int) -> None:
        # Worker 0 polls (for notifications other processes wrote); the others
        # sleep until woken, so an idle monitor makes one cheap query per poll.
        idle_wait = self.poll_seconds if number == 0 else max(self.poll_seconds, 5.0)
        measured = 0.0
        while not self._stop.is_set():
            try:
                handed = self.dispatch_once()
                if number == 0 and time.monotonic() - measured >= BACKLOG_EVERY_SECONDS:
                    measured = time.monotonic()
                    self.measure_backlog()
            except MedicError as exc:
                log.warning("hand-off pass failed: %s", exc.message)
                handed = 0
            except Exception:
                log.exception("hand-off pass failed")
                handed = 0
            if handed:
                if number == 0:
                    self.wake()  # there is work: bring the others in
                continue
            with self._wake:
                if self._pending_wakes == 0:
                    self._wake.wait(idle_wait)
                self._pending_wakes = max(self._pending_wakes - 1, 0)
