"""Services: registration, reads, updates and deletion (``services``), bulk
changes, and restoring a snapshot (undo).

Every change is audited (``history.record``) and, when destructive, snapshotted
first (``snapshots.take``), in the transaction of the change.

Times come from the database clock (``now()`` of the transaction). An update
that changes what the lifecycle cares about (active, muted, marked down or up by
hand) asks ``lifecycle.apply_update`` what follows and carries it out with
``alert_store.execute`` in the same transaction.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from medic import audit
from medic.db import Row, Tx, set_clause
from medic.errors import Conflict, FailedPrecondition, NotFound
from services.heartbeat import alert_store, heartbeat_store, history, lifecycle, snapshots
from services.heartbeat.alert_store import Changes
from services.heartbeat.deadline import deadline
from services.heartbeat.schedule import of as schedule_of
from services.heartbeat.status import FAILURE_STATUSES_PARAM
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
# A bulk change locks its services in id order, as the ingest does: no deadlock between them.
LOCK_SERVICES = f"SELECT {SERVICE_COLUMNS} FROM services WHERE service_id = ANY(%s) ORDER BY service_id FOR UPDATE"
# What a re-created service is registered with (INSERT_SERVICE's fields).
REGISTERED = ("service_name", "alert_interval_seconds", "threshold", "grace_period_seconds", "team", "team_id",
              "priority", "runbook", "notify_mode", "schedule", "timezone", "max_duration_seconds",
              "min_duration_seconds", "failure_tolerance")
# What a re-created service gets for a setting its snapshot predates (the columns' defaults).
REGISTERED_DEFAULTS = {"timezone": "UTC", "failure_tolerance": 0}

# Columns UpdateService may change, in the order written.
UPDATABLE = ("service_name", "alert_interval_seconds", "threshold", "grace_period_seconds", "team",
             "team_id", "priority", "runbook", "notify_mode", "active", "muted", "muted_at", "mute_reason",
             "muted_by", "muted_until", "state",
             "recent_beats", "activated_at", "deadline_at", "schedule", "timezone", "max_duration_seconds",
             "min_duration_seconds", "failure_tolerance")


# A change made without asking routing (a store called directly): its snapshot says so.
UNKNOWN_RELATED = snapshots.Related(unavailable=True)


class ServiceStore(heartbeat_store.LifecycleStore):
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
                history.record(tx, "register", row["service_id"], None, row)
                return row, True
            existing = tx.one(SELECT_SERVICE_BY_NAME, (fields["heartbeat_name"],))
        if existing is None:  # deleted between the two statements
            raise Conflict("service changed concurrently, retry")
        return existing, False

    def delete(self, *, heartbeat_name: str | None = None, service_id: int | None = None,
               related: snapshots.Related | None = None) -> None:
        with self.db.transaction() as tx:
            row = self._get(tx, heartbeat_name, service_id, lock=True)
            snapshots.take(tx, row, "delete", related or UNKNOWN_RELATED)
            heartbeat_store.delete_service_events(tx, row["service_id"])
            tx.execute(DELETE_SERVICE, (row["service_id"],))
            history.record(tx, "delete", row["service_id"], row, None)

    def transitions(self, limit: int, *, offset: int = 0, heartbeat_name: str | None = None,
                    service_id: int | None = None) -> list[Row]:
        with self.db.transaction() as tx:
            row = self._get(tx, heartbeat_name, service_id)
            return alert_store.list_transitions(tx, row["service_id"], limit, offset)

    def find(self, service_id: int) -> Row | None:
        """The service with this id, or None (deleted)."""
        return self.db.one(SELECT_SERVICE_BY_ID, (service_id,))

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
               service_id: int | None = None, down: bool | None = None,
               related: snapshots.Related | None = None) -> Row:
        """Applies ``changes`` (column -> value) and recomputes the deadline.
        Deactivating resolves an open alert; ``down`` opens (true) or resolves
        (false) one by hand. The service as it was is snapshotted (with
        ``related``, its team and targets) and the change audited, in the same
        transaction."""
        done = Changes()
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            current = self._get(tx, heartbeat_name, service_id, lock=True)
            updated = self._apply(tx, now, current, changes, down, done)
            action = history.action_type(current, updated)
            snapshots.take(tx, current, action, related or UNKNOWN_RELATED)
            history.record(tx, action, current["service_id"], current, updated)
        self.on_committed(done)
        return updated

    def _apply(self, tx: Tx, now, current: Row, changes: dict[str, Any], down: bool | None,
               done: Changes, *, at_commit: bool = False) -> Row:
        """The update rule: ``current`` with ``changes``, its lifecycle and deadline; the row written.
        ``at_commit``: the writes go with the transaction's COMMIT (a bulk change:
        no round trip per service), and the row is the one computed here."""
        if at_commit:
            tx = _AtCommit(tx)
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
        update = (f"UPDATE services SET {set_clause(row, UPDATABLE)}, updated_at = %(now)s"
                  " WHERE service_id = %(service_id)s")
        if at_commit:
            tx.execute(update, dict(row, now=now))
            return dict(row, updated_at=now)
        return tx.one(f"{update} RETURNING {SERVICE_COLUMNS}", dict(row, now=now))

    # --- bulk changes and undo ------------------------------------------------------

    def bulk_update(self, service_ids: Sequence[int], changes: dict[str, Any],
                    related: Callable[[Row], snapshots.Related] = lambda row: UNKNOWN_RELATED,
                    ) -> tuple[uuid.UUID, int]:
        """Applies ``changes`` to every service, in one transaction: each one
        snapshotted and audited (``bulk_edit``) under one new bulk id."""
        bulk_id = uuid.uuid4()
        done = Changes()
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            rows = tx.all(LOCK_SERVICES, (sorted(set(service_ids)),))
            missing = sorted(set(service_ids) - {r["service_id"] for r in rows})
            if missing:
                raise NotFound(f"service id {missing[0]} is not registered (nothing was changed)")
            taken, events = [], []
            for current in rows:
                updated = self._apply(tx, now, current, changes, None, done, at_commit=True)
                taken.append((current, related(current)))
                events.append(history.event("bulk_edit", current["service_id"], current, updated, bulk_id=bulk_id))
            snapshots.take_many(tx, taken, "bulk_edit", bulk_id)
            audit.record_many(tx, events)
        self.on_committed(done)
        return bulk_id, len(rows)

    def restore(self, snapshot_id: int, related: snapshots.Related, *,
                team_exists: bool | None = None) -> snapshots.Restored:
        """Puts the service of a snapshot back as it was (see ``snapshots``)."""
        done = Changes()
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            snap = snapshots.lock_for_restore(tx, snapshot_id)
            restored = self._restore_one(tx, now, snap, related, done, team_exists=team_exists)
            snapshots.mark_restored(tx, [snapshot_id])
            restored.snapshot = tx.one(snapshots.SELECT_SNAPSHOT, (snapshot_id,))
        self.on_committed(done)
        return restored

    def undo_bulk(self, bulk_id: str, related: Callable[[Row], snapshots.Related] = lambda row: UNKNOWN_RELATED,
                  ) -> tuple[uuid.UUID, int, list[str]]:
        """Restores every snapshot of a bulk change not restored yet, in one
        transaction, as a bulk change of its own (new bulk id)."""
        undo_id = uuid.uuid4()
        done = Changes()
        notes: list[str] = []
        with self.db.transaction() as tx:
            now = tx.one("SELECT now() AS now")["now"]
            pending = snapshots.lock_bulk(tx, bulk_id)
            taken, events = [], []
            for snap in pending:
                current = tx.one(SELECT_SERVICE_BY_ID + " FOR UPDATE", (snap["service_id"],))
                if current is None:
                    notes.append(f"service {snap['service_id']} was deleted since; restore its own "
                                 "snapshot to re-create it")
                    continue
                updated = self._apply(tx, now, current, _restorable(snap["snapshot_data"]), None, done,
                                      at_commit=True)
                taken.append((current, related(current)))
                events.append(history.event("restore", current["service_id"], current, updated, bulk_id=undo_id,
                                            details={"snapshot_id": snap["snapshot_id"], "undo_of_bulk_id": bulk_id}))
            if taken:
                snapshots.take_many(tx, taken, "restore", undo_id)
                audit.record_many(tx, events)
            snapshots.mark_restored(tx, [s["snapshot_id"] for s in pending])
        self.on_committed(done)
        return undo_id, len(taken), notes

    def _restore_one(self, tx: Tx, now, snap: Row, related: snapshots.Related, done: Changes, *,
                     team_exists: bool | None) -> snapshots.Restored:
        data = snap["snapshot_data"]
        changes = _restorable(data)
        notes = []
        if team_exists is False and changes.get("team_id") is not None:
            notes.append(f"Its team (id {changes['team_id']}) no longer exists, so it has none now.")
            changes["team_id"] = None
        details = {"snapshot_id": snap["snapshot_id"]}
        current = tx.one(SELECT_SERVICE_BY_ID + " FOR UPDATE", (snap["service_id"],))
        if current is not None:
            updated = self._apply(tx, now, current, changes, None, done)
            snapshots.take(tx, current, "restore", related)
            history.record(tx, "restore", current["service_id"], current, updated, details=details)
            return snapshots.Restored(snapshot=snap, service=updated, notes=notes)
        # Deleted since: re-created under its heartbeat name, with a new id.
        taken = tx.one(SELECT_SERVICE_BY_NAME, (data["heartbeat_name"],))
        if taken is not None:
            raise FailedPrecondition(
                f"service {snap['service_id']} was deleted and its heartbeat name {data['heartbeat_name']!r} "
                f"now belongs to service {taken['service_id']}; delete or rename that one first")
        fields = {name: changes.get(name, REGISTERED_DEFAULTS.get(name)) for name in REGISTERED}
        fields["heartbeat_name"] = data["heartbeat_name"]
        fields.update(now=now, deadline_at=deadline((), fields["threshold"], now, fields["alert_interval_seconds"],
                                                     fields["grace_period_seconds"]))
        created = tx.one(INSERT_SERVICE, fields)
        updated = self._apply(tx, now, created, {"active": changes["active"], "muted": changes["muted"]},
                              None, done)
        details["previous_service_id"] = snap["service_id"]
        history.record(tx, "restore", updated["service_id"], None, updated, details=details)
        return snapshots.Restored(snapshot=snap, service=updated, recreated=True,
                                  previous_service_id=snap["service_id"], notes=notes)


class _AtCommit:
    """``tx`` whose statements run for their effect alone (``execute``) wait for
    its COMMIT, in the same round trip; reads still go at once. For a bulk
    change, whose services' writes no later statement reads."""

    def __init__(self, tx: Tx):
        self._tx = tx

    def execute(self, sql: str, params: Any = None) -> None:
        self._tx.before_commit(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def _restorable(data: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of snapshot data that an update writes back (not the name: it is the key)."""
    return {name: data[name] for name in history.SETTINGS if name != "heartbeat_name" and name in data}
