"""The circuit breaker: at most ``max_executions`` executions per service in a
sliding window of ``window_seconds``; the next one is refused.

The first refusal trips the breaker: a row in ``remediation_breaker_trips``
(open until the oldest counted execution leaves the window), an audit event
(``circuit_breaker_tripped``, in the same transaction), an error log line
and ``medic_remediation_circuit_breaker_trips_total`` (which the Prometheus rule
MedicRemediationCircuitBreakerTripped alerts on), once per trip. Refusals while
it is open are only counted on that row. Every execution counts (by alert, by
hand, by webhook), whatever its outcome.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from medic import audit
from medic.db import Tx
from medic.errors import FailedPrecondition
from services.remediation import metrics

log = logging.getLogger(__name__)

# One breaker decision per service at a time: two executions started at once
# for one service cannot both be the Nth.
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('medic-remediation-breaker:' || %(service)s, 0))"

IN_WINDOW = """
    SELECT count(*) AS n, min(created_at) AS oldest FROM playbook_executions
    WHERE service_id = %(service)s AND created_at > %(since)s
"""

OPEN_TRIP = """
    UPDATE remediation_breaker_trips SET refused = refused + 1
    WHERE trip_id = (SELECT trip_id FROM remediation_breaker_trips
                     WHERE service_id = %(service)s AND open_until > %(now)s
                     ORDER BY trip_id DESC LIMIT 1)
    RETURNING trip_id, tripped_at, open_until
"""

NEW_TRIP = """
    INSERT INTO remediation_breaker_trips (service_id, playbook_id, tripped_at, open_until)
    VALUES (%(service)s, %(playbook)s, %(now)s, %(until)s)
    RETURNING trip_id, tripped_at, open_until
"""


# The same for a burst: the services' locks in one statement, in id order (as any
# two bursts take them), then their counts.
LOCK_MANY = """
    SELECT pg_advisory_xact_lock(hashtextextended('medic-remediation-breaker:' || s, 0))
    FROM unnest(%(services)s::bigint[]) AS s
"""

IN_WINDOW_MANY = """
    SELECT service_id, count(*) AS n FROM playbook_executions
    WHERE service_id = ANY(%(services)s::bigint[]) AND created_at > %(since)s
    GROUP BY service_id
"""


class CircuitOpen(FailedPrecondition):
    pass


def is_open(executions_in_window: int, max_executions: int) -> bool:
    return executions_in_window >= max_executions


@dataclass(frozen=True)
class BreakerPolicy:
    max_executions: int
    window_seconds: float

    def would_refuse(self, tx: Tx, service_ids: list[int], now: dt.datetime) -> bool:
        """Whether starting one execution for each of ``service_ids`` (a service
        may appear more than once) would be refused for any; the services stay
        locked until ``tx`` ends, so the answer holds for its inserts."""
        services = sorted(set(service_ids))
        if not services:
            return False
        tx.execute(LOCK_MANY, {"services": services})
        counts = {r["service_id"]: r["n"] for r in tx.all(IN_WINDOW_MANY, {
            "services": services, "since": now - dt.timedelta(seconds=self.window_seconds)})}
        for service_id in service_ids:
            if is_open(counts.get(service_id, 0), self.max_executions):
                return True
            counts[service_id] = counts.get(service_id, 0) + 1
        return False

    def check(self, tx: Tx, service_id: int, playbook_id: int, now: dt.datetime, *,
              locked: bool = False) -> CircuitOpen | None:
        """None when another execution for the service may start now; else the
        refusal (the trip recorded, in ``tx``). ``locked``: an earlier statement
        of ``tx`` took ``LOCK`` already."""
        if not locked:
            tx.execute(LOCK, {"service": service_id})
        window = dt.timedelta(seconds=self.window_seconds)
        counted = tx.one(IN_WINDOW, {"service": service_id, "since": now - window})
        if not is_open(counted["n"], self.max_executions):
            return None
        metrics.BREAKER_REFUSED.inc()
        trip = tx.one(OPEN_TRIP, {"service": service_id, "now": now})
        if trip is None:
            trip = tx.one(NEW_TRIP, {"service": service_id, "playbook": playbook_id, "now": now,
                                     "until": counted["oldest"] + window})
            metrics.BREAKER_TRIPS.inc()
            audit.record(tx, source="remediation", action_type="circuit_breaker_tripped", resource="circuit_breaker",
                         resource_id=service_id, service_id=service_id, who=audit.SYSTEM,
                         after={"open_until": trip["open_until"], "executions_in_window": counted["n"],
                                "max_executions": self.max_executions, "window_seconds": self.window_seconds},
                         details={"refused_playbook_id": playbook_id})
            log.error("circuit breaker tripped for service %s: %d executions in the last %g s "
                      "(limit %d); executions for it are refused until %s", service_id, counted["n"],
                      self.window_seconds, self.max_executions, trip["open_until"].isoformat())
        return CircuitOpen(
            f"circuit breaker open for service {service_id}: {counted['n']} executions in the last "
            f"{self.window_seconds:g} s (limit {self.max_executions}); new executions are refused until "
            f"{trip['open_until'].isoformat()}")
