"""The monitor: notices silence, and keeps the lifecycle's other clocks.

Each pass (every ``MEDIC_MONITOR_TICK_SECONDS``), in short transactions, it
carries out what ``lifecycle.py`` decides for:

1. services whose ``deadline_at`` has passed (active, not down; the partial
   index makes the claim O(due services)), claimed with ``FOR UPDATE SKIP
   LOCKED``: the down rule is re-checked against ``heartbeat_events`` and each
   service still overdue gets its alert (``lifecycle.overdue``); a stale
   deadline is corrected instead;
2. job runs open past their service's ``max_duration_seconds`` (through the
   partial index ``job_runs_overdue_idx``, O(due runs) too): each is marked
   ``timed_out`` and its service gets a ``run_too_long`` alert
   (``lifecycle.run_too_long``), which the run's end resolves;
3. notifications due on open alerts (``lifecycle.remind``): REMINDERs, and the
   TRIGGER a maintenance window held back, due when the window ends;
4. mutes older than ``MEDIC_MUTE_TTL_SECONDS`` (``lifecycle.mute_expired``);
5. the starts and ends of announcing maintenance windows (``announcements.py``).

A pass begins with one statement (``WORK_DUE``) asking, through the same
partial indexes, which of these steps has anything due, with the database's
clock and the windows' generation for step 5; only those steps run. An idle
pass is that one round trip: on a busy machine each round trip waits for the
scheduler twice, and the nine of the steps' transactions cost an idle pass
14 ms at a load of 16 on 2 cores (docs/performance.md).

Any number of monitors may run on one database: row locks, SKIP LOCKED and the
unique partial index on active alerts keep them from doing anything twice.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from medic.db import Database, Prepared
from medic.periodic import Periodic
from services.heartbeat import (alert_store, deadline as rule, lifecycle, metrics, run_store, schedule,
                               service_counts)
from services.heartbeat.alert_store import AlertStore, Changes, RunFacts
from services.heartbeat.announcements import Announcer
from services.heartbeat.lifecycle import LifecyclePolicy, NotificationKind, Quiet, SkipReason
from services.heartbeat.outbox_store import enqueue
from services.heartbeat.window_store import WindowStore
from services.heartbeat.windows import ServiceKey

log = logging.getLogger(__name__)

GAUGE_SECONDS = 5.0

# Each condition is its step's claim's, so that it is answered by the step's
# partial index (services_due_idx, job_runs_overdue_idx, alerts_reminder_due_idx,
# services_muted_idx and services_muted_until_idx); prepared: planning it would
# cost more than running it.
WORK_DUE = Prepared("medic_monitor_work_due", f"""
    SELECT now() AS now, (SELECT generation FROM maintenance_windows_generation) AS generation,
           EXISTS (SELECT 1 FROM services
                   WHERE active AND state <> '{lifecycle.NOT_WATCHED}' AND deadline_at <= now()) AS overdue,
           EXISTS (SELECT 1 FROM job_runs
                   WHERE completed_at IS NULL AND overdue_at IS NOT NULL AND overdue_at <= now()) AS overruns,
           EXISTS (SELECT 1 FROM alerts WHERE active AND next_reminder_at <= now()) AS reminders,
           EXISTS (SELECT 1 FROM services WHERE muted AND muted_at <= now() - make_interval(secs => %(ttl)s))
           OR EXISTS (SELECT 1 FROM services WHERE muted AND muted_until IS NOT NULL AND muted_until <= now())
               AS mutes
""", [("ttl", "float8")])


class Monitor:
    def __init__(self, db: Database, *, policy: LifecyclePolicy, tick_seconds: float, batch: int,
                 mute_ttl_seconds: float, on_committed: Callable[[Changes], None],
                 windows: WindowStore | None = None):
        self.db = db
        self.windows = windows or WindowStore(db)
        self.store = AlertStore(db, policy)
        self.policy = policy
        self.tick_seconds = tick_seconds
        self.batch = batch
        self.mute_ttl_seconds = mute_ttl_seconds
        self.on_committed = on_committed
        self.announcer = Announcer(db, self.windows)
        self._loop = Periodic("monitor", self.tick, tick_seconds)
        # The gauges read the kept counts of services by state and fold them (two short
        # statements): on their own thread, so no pass waits for them.
        self._gauges = Periodic("monitor-gauges", self.refresh_gauges, GAUGE_SECONDS)

    # --- one pass -----------------------------------------------------------------

    def tick(self) -> Changes:
        """One monitor pass; returns what it changed."""
        changes = Changes()
        started = time.perf_counter()
        due = self.db.one(WORK_DUE, {"ttl": float(self.mute_ttl_seconds)})
        # A burst larger than one batch is drained in the same pass.
        while due["overdue"] and self._open_overdue(changes) >= self.batch:
            pass
        while due["overruns"] and self._open_overruns(changes) >= self.batch:
            pass
        while due["reminders"] and self._make_reminders(changes) >= self.batch:
            pass
        if due["mutes"]:
            self._expire_mutes()
        self._announce(changes, due["now"], due["generation"])
        metrics.MONITOR_TICK_SECONDS.observe(time.perf_counter() - started)
        return changes

    def refresh_gauges(self) -> None:
        """Services down, and services by state, for the dashboard."""
        service_counts.fold(self.db)
        counts = self.store.count_by_state()
        metrics.SERVICES_DOWN.set(counts[lifecycle.ServiceState.DOWN])
        for state, count in counts.items():
            metrics.SERVICES_BY_STATE.labels(state).set(count)

    def _open_overdue(self, changes: Changes) -> int:
        batch = Changes()
        with self.db.transaction() as tx:
            due = self.store.claim_overdue(tx, self.batch)
            metrics.DUE_BATCH_SIZE.observe(len(due))
            metrics.SERVICES_OVERDUE.set(len(due))
            book = self.windows.book(tx) if due else None
            for service in due:
                now = service["now"]
                recent = list(service["recent"])
                deadline_at = rule.deadline(recent, service["threshold"], service["activated_at"],
                                            service["alert_interval_seconds"], service["grace_period_seconds"],
                                            schedule.of(service["schedule"], service["timezone"]))
                if not rule.is_overdue(deadline_at, now):
                    # The stored deadline was stale (e.g. a threshold change raced a heartbeat).
                    self.store.fix_deadline(tx, service["service_id"], deadline_at, recent)
                    continue
                window = book.open_for(ServiceKey(service["service_id"], service["team"],
                                                  service["heartbeat_name"]), now)
                alert_store.execute(tx, self.policy, batch, service["service_id"],
                                    lifecycle.overdue(service["state"]), muted=service["muted"],
                                    interval_seconds=service["alert_interval_seconds"], now=now, window=window)
        self._committed(batch, changes)
        return len(due)

    def _open_overruns(self, changes: Changes) -> int:
        batch = Changes()
        with self.db.transaction() as tx:
            due = run_store.claim_overrun(tx, self.batch)
            book = self.windows.book(tx) if due else None
            for run in due:
                run_store.mark_timed_out(tx, run["job_run_id"])
                if not run["active"]:
                    continue
                facts = RunFacts(run["job_run_id"], run["run_id"], run_store.RunStatus.TIMED_OUT, None)
                window = book.open_for(ServiceKey(run["service_id"], run["team"], run["heartbeat_name"]), run["now"])
                alert_store.execute(tx, self.policy, batch, run["service_id"], lifecycle.run_too_long(run["state"]),
                                    muted=run["muted"], interval_seconds=run["alert_interval_seconds"],
                                    now=run["now"], run=facts, window=window)
        self._committed(batch, changes)
        return len(due)

    def _make_reminders(self, changes: Changes) -> int:
        batch = Changes()
        with self.db.transaction() as tx:
            due = self.store.claim_due_reminders(tx, self.batch)
            book = self.windows.book(tx) if due else None
            for alert in due:
                now = alert["now"]
                window = book.open_for(ServiceKey(alert["service_id"], alert["team"], alert["heartbeat_name"]), now)
                window_id = window.window_id if window else 0
                reminder = lifecycle.remind(
                    alert["reminders"], quiet=Quiet(window=window_id, muted=alert["muted"],
                                                    acknowledged=alert["acknowledged"]),
                    window_end=window.end if window else None, trigger_sent=alert["trigger_sent"],
                    interval_seconds=alert["alert_interval_seconds"], now=now, policy=self.policy)
                if reminder.notify.send:
                    seq = reminder.reminders if reminder.kind is NotificationKind.REMINDER else None
                    enqueue(tx, alert["alert_id"], reminder.kind, now, seq=seq)
                    batch.notifications += 1
                else:
                    alert_store.record_skip(tx, batch, alert["alert_id"], reminder.kind, reminder.notify,
                                            window_id, now)
                held = window_id if reminder.notify.skip_reason is SkipReason.WINDOW else 0
                self.store.schedule_reminder(tx, alert["alert_id"], reminder.reminders, reminder.next_at, held)
        self._committed(batch, changes)
        return len(due)

    def _expire_mutes(self) -> None:
        self.store.expire_mutes(self.mute_ttl_seconds)

    def _announce(self, changes: Changes, now, generation: int) -> None:
        batch = Changes()
        batch.notifications = self.announcer.tick(now, generation)
        self._committed(batch, changes)

    def _committed(self, batch: Changes, total: Changes) -> None:
        total.merge(batch)
        if batch.opened or batch.resolved or batch.notifications:
            self.on_committed(batch)

    # --- the loop -------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()
        self._gauges.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)
        self._gauges.stop(timeout)
