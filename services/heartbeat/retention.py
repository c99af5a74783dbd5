"""Retention: deletes heartbeat events older than ``MEDIC_HEARTBEAT_RETENTION_DAYS``,
and audit events and service snapshots older than ``MEDIC_AUDIT_RETENTION_DAYS``
(the audit log is pruned here, by its reader: docs/architecture.md).

Why batched deletes and not a time-partitioned table (measured with
``bench/bench_retention.py``, see docs/operations.md):

* One batch (``HeartbeatStore.delete_expired_batch``) deletes at most ``batch``
  rows, oldest first, found through the index on ``heartbeat_events (time)``,
  in its own short transaction. DELETE takes only ROW EXCLUSIVE on the table
  (it never blocks the ingest's INSERTs or any reader) and row locks on the
  rows it deletes, which nobody else updates; so "long locks" cannot happen,
  whatever the backlog.
* Partitioning would make the drop O(1), but it needs the partition key in the
  primary key, partitions created ahead of time, a rewrite of the existing table
  on upgrade, and every "last k heartbeats of a service" lookup (the ingest's
  and monitor's down rule) would probe every partition. And whole-partition
  drops cannot keep what the down rule still needs (below).

What the down rule still needs is never deleted: the monitor re-checks an
overdue service against its ``threshold`` latest counting heartbeats in
``heartbeat_events`` (``services.recent_beats`` holds their times, newest
first). Deleting them would move h_k back to the activation time and open a
false alert for a service whose interval x threshold is longer than the
retention (a weekly job with threshold 5 needs 5 weeks). So rows at or after
the oldest time in ``recent_beats`` are kept, however old.

Several processes may run retention at once (every heartbeat/monitor replica):
SKIP LOCKED makes concurrent batches take different rows instead of waiting
for each other.
"""
from __future__ import annotations

import logging

from medic.db import Database
from medic.periodic import Periodic
from services.heartbeat import audit_log, metrics
from services.heartbeat.heartbeat_store import HeartbeatStore
from services.heartbeat.run_store import RunStore

log = logging.getLogger(__name__)

# Audit events (audit_log.DELETE_EXPIRED) and snapshots older than
# MEDIC_AUDIT_RETENTION_DAYS, oldest first, a batch at a time (the same short
# transactions as the heartbeat events').
DELETE_EXPIRED_SNAPSHOTS = """
    DELETE FROM service_snapshots WHERE snapshot_id IN (
        SELECT snapshot_id FROM service_snapshots WHERE created_at < now() - make_interval(days => %(days)s)
        ORDER BY created_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
"""

DEFAULT_BATCH = 5000
# Between batches: lets autovacuum, the ingest and replicas' WAL replay keep up.
DEFAULT_PAUSE_SECONDS = 0.05


class Retention:
    def __init__(self, db: Database, *, retention_days: int, interval_seconds: float,
                 batch: int = DEFAULT_BATCH, pause_seconds: float = DEFAULT_PAUSE_SECONDS,
                 audit_retention_days: int = 400):
        self.db = db
        self.store = HeartbeatStore(db)
        self.runs = RunStore(db)
        self.audit = audit_log.AuditLog(db)
        self.retention_days = retention_days
        self.audit_retention_days = audit_retention_days
        self.interval_seconds = interval_seconds
        self.batch = batch
        self.pause_seconds = pause_seconds
        self._loop = Periodic("retention", self.run_once, interval_seconds)
        self._stop = self._loop.stopping

    def delete_batch(self) -> int:
        """One short transaction; the number of events it deleted."""
        deleted = self.store.delete_expired_batch(self.retention_days, self.batch)
        metrics.EVENTS_DELETED.inc(deleted)
        return deleted

    def delete_history_batch(self, sql: str) -> int:
        with self.db.transaction() as tx:
            return tx.execute(sql, {"days": self.audit_retention_days, "batch": self.batch})

    def delete_audit_batch(self) -> int:
        with self.db.transaction() as tx:
            return tx.one(audit_log.DELETE_EXPIRED, {"days": self.audit_retention_days, "batch": self.batch})["n"]

    def _drain(self, delete_batch) -> int:
        total = 0
        while not self._stop.is_set():
            deleted = delete_batch()
            total += deleted
            if deleted < self.batch:
                break
            self._stop.wait(self.pause_seconds)
        return total

    def run_once(self) -> int:
        """Deletes every expired heartbeat event, batch after batch, and the job runs
        under the same retention (those ended, or never ended and started, before it),
        then expired audit events and service snapshots; the number of heartbeat
        events and runs deleted."""
        total = self._drain(self.delete_batch)
        total += self._drain(lambda: self.runs.delete_expired_batch(self.retention_days, self.batch))
        if total:
            log.info("retention deleted %d heartbeat events older than %d days", total,
                     self.retention_days)
        self.audit.seal_tally()
        events = self._drain(self.delete_audit_batch)
        snapshots = self._drain(lambda: self.delete_history_batch(DELETE_EXPIRED_SNAPSHOTS))
        if events or snapshots:
            log.info("retention deleted %d audit events and %d service snapshots older than %d days",
                     events, snapshots, self.audit_retention_days)
        return total

    # --- the loop -------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the batch in progress (at most one short transaction)."""
        self._loop.stop(timeout)
