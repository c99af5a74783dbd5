"""Services: registration, reads, updates and deletion (``services``).

Times come from the database clock (``now()`` of the transaction). An update
that changes what the lifecycle cares about (active, muted, marked down or up by
hand) asks ``lifecycle.apply_update`` what follows and carries it out with
``alert_store.execute`` in the same transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medic.db import Database, Row, Tx, set_clause
from medic.errors import Conflict, NotFound
from services.heartbeat import alert_store, heartbeat_store, lifecycle
from services.heartbeat.alert_store import Changes
from services.heartbeat.deadline import deadline
from services.heartbeat.lifecycle import LifecyclePolicy
from services.heartbeat.schedule import of as schedule_of
from services.heartbeat.status import FAILURE_STATUSES_PARAM
from services.heartbeat.window_store import WindowStore
from services.heartbeat.windows import ServiceKey

SERVICE_COLUMNS = """
    service_id, heartbeat_name, service_name, alert_interval_seconds, threshold,
    grace_period_seconds, team, priority, runbook, notify_mode, active, muted, muted_at, mute_reason,
    muted_by, muted_until,
    state, recent_beats, activated_at, last_heartbeat_at, deadline_at, created_at, updated_at, team_id,
    schedule, timezone, max_duration_seconds, min_duration_seconds, failure_tolerance, consecutive_failures
"""

SELECT_SERVICE_BY_NAME = f"SELECT {SERVICE_COLUMNS} FROM services WHERE lower(heartbeat_name) = lower(%s)"
SELECT_SERVICE_BY_ID = f"SELECT {SERVICE_COLUMNS} FROM services WHERE service_id = %s"

INSERT_SERVICE = f"""
    INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, threshold,
                          grace_period_seconds, team, team_id, priority, runbook, notify_mode,
                          schedule, timezone, max_duration_seconds, min_duration_seconds, failure_tolerance,
                          activated_at, deadline_at, created_at, updated_at)
    VALUES (%(heartbeat_name)s, %(service_name)s, %(alert_interval_seconds)s, %(threshold)s,
            %(grace_period_seconds)s, %(team)s, %(team_id)s, %(priority)s, %(runbook)s, %(notify_mode)s,
            %(schedule)s, %(timezone)s, %(max_duration_seconds)s, %(min_duration_seconds)s,
            %(failure_tolerance)s, %(now)s, %(deadline_at)s, %(now)s, %(now)s)
    ON CONFLICT ((lower(heartbeat_name))) DO NOTHING
    RETURNING {SERVICE_COLUMNS}
"""

RECENT_COUNTING_BEATS = """
    SELECT time FROM heartbeat_events
    WHERE service_id = %s AND status <> ALL(%s) AND time >= %s
    ORDER BY time DESC LIMIT %s
"""

DELETE_SERVICE = "DELETE FROM services WHERE service_id = %s"

# Columns UpdateService may change, in the order written.
UPDATABLE = ("service_name", "alert_interval_seconds", "threshold", "grace_period_seconds", "team",
             "team_id", "priority", "runbook", "notify_mode", "active", "muted", "muted_at", "mute_reason",
             "muted_by", "muted_until", "state",
             "recent_beats", "activated_at", "deadline_at", "schedule", "timezone", "max_duration_seconds",
             "min_duration_seconds", "failure_tolerance")


class ServiceStore:
    def __init__(self, db: Database, policy: LifecyclePolicy = LifecyclePolicy(),
                 on_committed: Callable[[Changes], None] | None = None, windows: WindowStore | None = None):
        self.db = db
        self.policy = policy
        self.windows = windows or WindowStore(db)
        # Told what a committed transaction changed (metrics, dispatcher wake-up).
        self.on_committed = on_committed or (lambda changes: None)

    def register(self, fields: dict[str, Any]) -> tuple[Row, bool]:
        """Inserts a service; returns (service, created). An existing name wins."""
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            fields = {"schedule": None, "timezone": "UTC", "max_duration_seconds": None,
                      "min_duration_seconds": None, "failure_tolerance": 0, **fields}
            params = dict(fields, now=now, deadline_at=deadline(
                (), fields["threshold"], now, fields["alert_interval_seconds"],
                fields["grace_period_seconds"], schedule_of(fields["schedule"], fields["timezone"])))
            row = tx.one(INSERT_SERVICE, params)
            if row is not None:
                return row, True
            existing = tx.one(SELECT_SERVICE_BY_NAME, (fields["heartbeat_name"],))
        if existing is None:  # deleted between the two statements
            raise Conflict("service changed concurrently, retry")
        return existing, False

    def delete(self, *, heartbeat_name: str | None = None, service_id: int | None = None) -> None:
        with self.db.transaction() as tx:
            row = self._get(tx, heartbeat_name, service_id, lock=True)
            heartbeat_store.delete_service_events(tx, row["service_id"])
            tx.execute(DELETE_SERVICE, (row["service_id"],))

    def transitions(self, limit: int, *, offset: int = 0, heartbeat_name: str | None = None,
                    service_id: int | None = None) -> list[Row]:
        with self.db.transaction() as tx:
            row = self._get(tx, heartbeat_name, service_id)
            return alert_store.list_transitions(tx, row["service_id"], limit, offset)

    def get(self, *, heartbeat_name: str | None = None, service_id: int | None = None) -> Row:
        with self.db.transaction() as tx:
            return self._get(tx, heartbeat_name, service_id)

    @staticmethod
    def _get(tx: Tx, heartbeat_name: str | None, service_id: int | None, lock: bool = False) -> Row:
        suffix = " FOR UPDATE" if lock else ""
        if heartbeat_name is not None:
            row = tx.one(SELECT_SERVICE_BY_NAME + suffix, (heartbeat_name,))
            what = f"heartbeat {heartbeat_name!r}"
        else:
            row = tx.one(SELECT_SERVICE_BY_ID + suffix, (service_id,))
            what = f"service id {service_id}"
        if row is None:
            raise NotFound(f"{what} is not registered")
        return row

    def list(self, service_name: str = "", active: bool | None = None) -> list[Row]:
        return self.db.all(
            f"SELECT {SERVICE_COLUMNS} FROM services"
            " WHERE (%(name)s = '' OR service_name = %(name)s)"
            " AND (%(active)s IS NULL OR active = %(active)s) ORDER BY service_id",
            {"name": service_name, "active": active})

    def update(self, changes: dict[str, Any], *, heartbeat_name: str | None = None,
               service_id: int | None = None, down: bool | None = None) -> Row:
        """Applies ``changes`` (column -> value) and recomputes the deadline.
        Deactivating resolves an open alert; ``down`` opens (true) or resolves
        (false) one by hand."""
        done = Changes()
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            current = self._get(tx, heartbeat_name, service_id, lock=True)
            sid = current["service_id"]
            row = dict(current)
            row.update(changes)
            after = lifecycle.apply_update(current["state"], active=current["active"], muted=current["muted"],
                                           to_active=row["active"], to_muted=row["muted"], down=down)
            if not row["muted"]:
                row.update(muted_at=None, mute_reason=None, muted_by=None, muted_until=None)
            elif not current["muted"]:
                row["muted_at"] = now
            if after.restarts_clock:
                row["activated_at"] = now
            if row["threshold"] != current["threshold"]:
                beats = tx.all(RECENT_COUNTING_BEATS,
                               (sid, FAILURE_STATUSES_PARAM, row["activated_at"], row["threshold"]))
                row["recent_beats"] = [b["time"] for b in beats]
            row["deadline_at"] = (deadline(row["recent_beats"] or (), row["threshold"], row["activated_at"],
                                           row["alert_interval_seconds"], row["grace_period_seconds"],
                                           schedule_of(row["schedule"], row["timezone"]))
                                  if row["active"] else None)
            for transition in after.events:
                window = None
                if transition.alert is lifecycle.AlertChange.OPEN:
                    window = self.windows.book(tx).open_for(
                        ServiceKey(sid, row["team"], row["heartbeat_name"]), now)
                alert_store.execute(tx, self.policy, done, sid, transition, muted=row["muted"],
                                    interval_seconds=row["alert_interval_seconds"], now=now, window=window)
            if sid in done.unmuted:  # recovered: the mute without an end ended with it
                row.update(muted=False, muted_at=None, mute_reason=None, muted_by=None)
            row["state"] = after.state
            updated = tx.one(
                f"UPDATE services SET {set_clause(row, UPDATABLE)}, updated_at = %(now)s"
                f" WHERE service_id = %(service_id)s RETURNING {SERVICE_COLUMNS}",
                dict(row, now=now))
        self.on_committed(done)
        return updated
