"""The durable hand-off of alert notifications to routing.

``alert_notifications`` is the outbox (``outbox_store.py``): every TRIGGER,
REMINDER and RESOLVE is written there in the transaction that made it. Worker
threads claim due rows with a lease (a worker that dies mid-call has its rows
taken over by any monitor once the lease ends), build the ``AlertEvent``s and
hand a worker's whole claim to routing in one ``RouteAlerts`` call
(``routing_client.py``). Only an event routing accepted marks its row handed
off; any failure (routing or delivery down, a timeout) schedules a retry by
``HANDOFF_RETRY``: short pauses, so that notifications follow within seconds
once routing is back, and never giving up. Routing and delivery deduplicate on
the event id, so a retry after a lost answer sends nothing twice.

A notification waits while an earlier one of the same alert is pending, so
routing always sees TRIGGER before REMINDERs before RESOLVE.

The same events go to the remediation service (``HandleAlertEvents``) by a
second dispatcher of this class over its own outbox (``remediation_handoffs``,
written with each notification): its own claims, retries and workers, so a
remediation service that is down or slow delays no notification, and gets
every event once it is back.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import grpc

from medic import tracing
from medic.db import Database, Row
from medic.retry import RetrySchedule
from medic.v1 import routing_pb2
from medic.workers import Workers
from services.heartbeat import metrics
from services.heartbeat.outbox_store import OutboxStore
from services.heartbeat.routing_client import refusal, route_alerts_request

log = logging.getLogger(__name__)

# 0.5 s, doubling, up to 5 s between tries, for as long as it takes.
HANDOFF_RETRY = RetrySchedule.doubling(0.5, cap=5.0)
BACKLOG_EVERY_SECONDS = 2.0


class Dispatcher:
    """``route_alerts`` makes a RouteAlerts call (``RoutingClient.route_alerts``):
    one per worker and claim. For the hand-off to remediation: ``outbox`` is a
    ``RemediationOutboxStore``, ``build_request`` makes a HandleAlertEventsRequest
    and ``route_alerts`` sends it; ``destination`` labels the metrics and logs."""

    def __init__(self, db: Database,
                 route_alerts: Callable[[routing_pb2.RouteAlertsRequest], routing_pb2.RouteAlertsResponse], *,
                 workers: int = 8, lease_seconds: float = 30.0, poll_seconds: float = 0.2,
                 batch: int = 32, outbox: OutboxStore | None = None,
                 build_request: Callable[[list[Row]], object] = route_alerts_request,
                 destination: str = "routing"):
        self.outbox = outbox or OutboxStore(db)
        self.route_alerts = route_alerts
        self.build_request = build_request
        self.destination = destination
        self.handoffs = metrics.HANDOFFS if destination == "routing" else metrics.REMEDIATION_HANDOFFS
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        # Worker 0 polls (for notifications other processes wrote); the others
        # sleep until woken, so an idle monitor makes one cheap query per poll.
        self._workers = Workers(f"handoff-{destination}", workers, self._work,
                                lambda n: poll_seconds if n == 0 else max(poll_seconds, 5.0))
        self._measured = 0.0

    def wake(self) -> None:
        """New notifications were committed by this process: hand them off now."""
        self._workers.wake()

    def dispatch_once(self, batch: int | None = None) -> int:
        """Claims up to ``batch`` notifications, hands them to routing in one call
        and records each outcome; returns how many were claimed."""
        rows = self.outbox.claim(batch or self.batch, self.lease_seconds)
        if not rows:
            return 0
        accepted, retries = [], []
        try:
            name = "alert hand-off" if self.destination == "routing" else f"alert hand-off to {self.destination}"
            with tracing.span(name, keys=[row["event_id"] for row in rows],
                              attributes={"medic.event_id": [row["event_id"] for row in rows]}):
                response = self.route_alerts(self.build_request(rows))
        except grpc.RpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"
            log.warning("hand-off of %d notification(s) to %s failed (%s); retrying", len(rows),
                        self.destination, error)
            retries = [self._retry(row, error, quiet=True) for row in rows]
        else:
            for row, result in zip(rows, response.results):
                error = refusal(result)
                if error is None:
                    accepted.append(row)
                else:
                    retries.append(self._retry(row, error))
        if retries:
            self.outbox.schedule_retries(retries)
        if accepted:
            self.outbox.mark_handed_off([row["notification_id"] for row in accepted])
            for row in accepted:
                self.handoffs.labels(row["kind"], "accepted").inc()
        return len(rows)

    def _retry(self, row: Row, error: str, quiet: bool = False) -> tuple[int, float, str]:
        delay = HANDOFF_RETRY.delay(max(row["attempts"], 1))
        if not quiet:
            log.warning("hand-off of %s to %s failed (%s); retrying in %.1f s", row["event_id"],
                        self.destination, error, delay)
        self.handoffs.labels(row["kind"], "retry").inc()
        return row["notification_id"], delay, error[:500]

    def measure_backlog(self) -> None:
        row = self.outbox.backlog()
        if self.destination == "routing":
            metrics.HANDOFF_BACKLOG.set(row["pending"])
            metrics.HANDOFF_OLDEST_SECONDS.set(float(row["oldest"]))
        else:
            metrics.REMEDIATION_HANDOFF_BACKLOG.set(row["pending"])

    # --- threads ------------------------------------------------------------------

    def start(self) -> None:
        self._workers.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._workers.stop(timeout)

    def _work(self, number: int) -> int:
        handed = self.dispatch_once()
        if number == 0:
            if time.monotonic() - self._measured >= BACKLOG_EVERY_SECONDS:
                self._measured = time.monotonic()
                self.measure_backlog()
            if handed:
                self.wake()  # there is work: bring the others in
        return handed
