"""Service snapshots (``service_snapshots``): a service's full settings, with its
team and notification targets, stored before each destructive change so that a
restore can put it back (undo).

The service's own settings are read in the transaction of the change. Its team
and targets are routing's; the servicer asks routing for them before the change
(``Related``) and they are stored as routing answered. When routing cannot
answer, the snapshot says so (``related_unavailable``) and the change goes on:
a change to a service never waits for routing to be back.

Restoring writes the settings back through ``ServiceStore`` (the lifecycle rules
apply: re-activating restarts the clock, muting records the time), takes a
snapshot of what the restore replaces and records a ``restore`` audit event, all
in one transaction. A service deleted since is re-created with its heartbeat
name and a new id. Its targets (with their working hours) are put back by
routing after the commit, as the caller: those that still exist updated where
they differ, those deleted since created anew, those added since deleted.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extras

from medic import audit
from medic.db import Database, Row, Tx, Where, uuid_param
from medic.errors import FailedPrecondition, InvalidArgument, NotFound
from medic.logs import request_id_var
from services.heartbeat import history

MAX_PAGE = 250
DEFAULT_PAGE = 50

SNAPSHOT_COLUMNS = """
    snapshot_id, service_id, heartbeat_name, action_type, snapshot_data, actor, principal, request_id,
    bulk_id, created_at, restored_at
"""

INSERT_SNAPSHOT = """
    INSERT INTO service_snapshots (service_id, heartbeat_name, action_type, snapshot_data, actor,
                                   principal, request_id, bulk_id)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
INSERT_SNAPSHOTS = """
    INSERT INTO service_snapshots (service_id, heartbeat_name, action_type, snapshot_data, actor,
                                   principal, request_id, bulk_id)
    VALUES %s
"""
SELECT_SNAPSHOT = f"SELECT {SNAPSHOT_COLUMNS} FROM service_snapshots WHERE snapshot_id = %s"
LOCK_SNAPSHOT = SELECT_SNAPSHOT + " FOR UPDATE"
LOCK_BULK = f"""
    SELECT {SNAPSHOT_COLUMNS} FROM service_snapshots WHERE bulk_id = %s
    ORDER BY service_id, snapshot_id FOR UPDATE
"""
MARK_RESTORED = "UPDATE service_snapshots SET restored_at = now() WHERE snapshot_id = ANY(%s)"

# A target's secrets: never shown by the snapshot API (they stay stored, to re-create it).
TARGET_SECRETS = ("routing_key", "headers")


@dataclass
class Related:
    """A service's team and notification targets, as routing answered (None:
    routing did not answer)."""
    team: dict[str, Any] | None = None
    targets: list[dict[str, Any]] | None = None
    unavailable: bool = False


def snapshot_data(row: Row, related: Related) -> dict[str, Any]:
    data = dict(history.settings(row))
    data["service_id"] = row["service_id"]
    data["team_details"] = related.team
    data["targets"] = related.targets
    if related.unavailable:
        data["related_unavailable"] = True
    return audit.as_json(data)


def public_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the snapshot API shows: the data without the targets' secrets."""
    shown = dict(data)
    if shown.get("targets"):
        shown["targets"] = [
            dict(target, config={k: v for k, v in (target.get("config") or {}).items()
                                 if k not in TARGET_SECRETS})
            for target in shown["targets"]]
    return shown


def _row(row: Row, action: str, related: Related, bulk_id: uuid.UUID | None, who: audit.Who | None) -> tuple:
    if action not in audit.SNAPSHOT_ACTIONS:  # the table checks nothing (migration 023)
        raise ValueError(f"{action!r} is not one of medic.audit.SNAPSHOT_ACTIONS")
    who = who or audit.current_who()
    return (row["service_id"], row["heartbeat_name"], action, psycopg2.extras.Json(snapshot_data(row, related)),
            who.label, who.principal, request_id_var.get() or None, None if bulk_id is None else str(bulk_id))


def take(tx: Tx, row: Row, action: str, related: Related, *, bulk_id: uuid.UUID | None = None,
         who: audit.Who | None = None) -> None:
    """Stores ``row`` (the service before the change) with ``tx``, the change's
    transaction, sent with its COMMIT (no round trip of its own)."""
    tx.before_commit(INSERT_SNAPSHOT, _row(row, action, related, bulk_id, who))


def take_many(tx: Tx, taken: Sequence[tuple[Row, Related]], action: str, bulk_id: uuid.UUID) -> None:
    """``take`` for the services of a bulk change, in one statement."""
    tx.values(INSERT_SNAPSHOTS, [_row(row, action, related, bulk_id, None) for row, related in taken])


@dataclass(frozen=True)
class SnapshotQuery:
    service_id: int = 0
    action_type: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    bulk_id: str = ""
    limit: int = DEFAULT_PAGE
    offset: int = 0


class SnapshotReader:
    def __init__(self, db: Database):
        self.db = db

    def get(self, snapshot_id: int) -> Row:
        row = self.db.one(SELECT_SNAPSHOT, (snapshot_id,))
        if row is None:
            raise NotFound(f"Snapshot {snapshot_id} not found")
        return row

    def list(self, query: SnapshotQuery) -> tuple[list[Row], int]:
        if query.action_type and query.action_type not in audit.SNAPSHOT_ACTIONS:
            raise InvalidArgument(f"Invalid action_type. Must be one of: {', '.join(audit.SNAPSHOT_ACTIONS)}")
        filters = Where()
        filters.equal("service_id", query.service_id)
        filters.equal("action_type", query.action_type)
        filters.between("created_at", query.start, query.end)
        filters.equal_uuid("bulk_id", query.bulk_id)
        return filters.page(self.db, "service_snapshots", SNAPSHOT_COLUMNS, "created_at DESC, snapshot_id DESC",
                            query.limit, query.offset)


def lock_for_restore(tx: Tx, snapshot_id: int) -> Row:
    row = tx.one(LOCK_SNAPSHOT, (snapshot_id,))
    if row is None:
        raise NotFound(f"Snapshot {snapshot_id} not found")
    if row["restored_at"] is not None:
        raise FailedPrecondition(f"Snapshot {snapshot_id} has already been restored")
    return row


def lock_bulk(tx: Tx, bulk_id: str) -> list[Row]:
    rows = tx.all(LOCK_BULK, (uuid_param("bulk_id", bulk_id),))
    if not rows:
        raise NotFound(f"No snapshot has bulk_id {bulk_id}")
    pending = [r for r in rows if r["restored_at"] is None]
    if not pending:
        raise FailedPrecondition(f"Every snapshot of bulk change {bulk_id} has already been restored")
    return pending


def mark_restored(tx: Tx, snapshot_ids: Sequence[int]) -> None:
    tx.execute(MARK_RESTORED, (list(snapshot_ids),))


@dataclass
class Restored:
    snapshot: Row
    service: Row
    recreated: bool = False
    previous_service_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.recreated:
            text = (f"Service {self.service['heartbeat_name']!r} had been deleted; it was re-created "
                    f"with id {self.service['service_id']} (it was {self.previous_service_id}).")
        else:
            text = f"Service {self.service['heartbeat_name']!r} restored from snapshot {self.snapshot['snapshot_id']}."
        return " ".join([text, *self.notes])
