"""Maintenance windows: ``maintenance_windows`` and its generation counter.

Every change bumps ``maintenance_windows_generation`` in its transaction; a
process keeps all windows in a ``windows.WindowBook`` and reloads it only when
the generation moved (``book``: one single-row read). Shortening or deleting a
window makes the alerts it held back due at once, so that they are decided
again (notified, or held by another window still open).
"""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from medic import audit
from medic.db import Database, Row, Tx
from medic.errors import NotFound
from services.heartbeat import announcements
from services.heartbeat.windows import Scope, Window, WindowBook

WINDOW_COLUMNS = """
    window_id, scope, service_id, team, name_glob, starts_at, ends_at, cron, duration_seconds, timezone,
    reason, announce, created_by, created_at, updated_at
"""

GENERATION = "SELECT generation FROM maintenance_windows_generation"
BUMP_GENERATION = "UPDATE maintenance_windows_generation SET generation = generation + 1 RETURNING generation"
ALL_WINDOWS = f"SELECT {WINDOW_COLUMNS} FROM maintenance_windows ORDER BY window_id"
SELECT_WINDOW = f"SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE window_id = %s"

INSERT_WINDOW = f"""
    INSERT INTO maintenance_windows (scope, service_id, team, name_glob, starts_at, ends_at, cron,
                                     duration_seconds, timezone, reason, announce, created_by)
    VALUES (%(scope)s, %(service_id)s, %(team)s, %(name_glob)s, %(starts_at)s, %(ends_at)s, %(cron)s,
            %(duration_seconds)s, %(timezone)s, %(reason)s, coalesce(%(announce)s, false), %(created_by)s)
    RETURNING {WINDOW_COLUMNS}
"""

UPDATE_WINDOW = f"""
    UPDATE maintenance_windows SET scope = %(scope)s, service_id = %(service_id)s, team = %(team)s,
        name_glob = %(name_glob)s, starts_at = %(starts_at)s, ends_at = %(ends_at)s, cron = %(cron)s,
        duration_seconds = %(duration_seconds)s, timezone = %(timezone)s, reason = %(reason)s,
        announce = coalesce(%(announce)s, false), updated_at = now()
    WHERE window_id = %(window_id)s
    RETURNING {WINDOW_COLUMNS}
"""

DELETE_WINDOW = f"DELETE FROM maintenance_windows WHERE window_id = %s RETURNING {WINDOW_COLUMNS}"

# The alerts a changed or deleted window held back are decided again now.
RELEASE_HELD = """
    UPDATE alerts SET next_reminder_at = now() WHERE active AND suppressed_by = %s
"""

SERVICE_EXISTS = "SELECT 1 FROM services WHERE service_id = %s"

# Fields a window is made of (as ``windows.check_window`` returns them).
FIELDS = ("scope", "service_id", "team", "name_glob", "starts_at", "ends_at", "cron", "duration_seconds",
          "timezone", "reason", "announce")


def _audit(tx: Tx, action: str, before: Row | None, after: Row | None) -> None:
    """The change's audit event, in its transaction (docs/architecture.md, "The audit log")."""
    row = after or before
    audit.record(tx, source="heartbeat", action_type=action, resource="maintenance_window",
                 resource_id=row["window_id"], service_id=row["service_id"], before=before, after=after)


def window_of(row: Row) -> Window:
    return Window(window_id=row["window_id"], scope=Scope(row["scope"]), reason=row["reason"],
                  created_by=row["created_by"], service_id=row["service_id"], team=row["team"],
                  name_glob=row["name_glob"], starts_at=row["starts_at"], ends_at=row["ends_at"],
                  cron=row["cron"], duration_seconds=row["duration_seconds"], timezone=row["timezone"],
                  announce=row["announce"])


class WindowStore:
    def __init__(self, db: Database):
        self.db = db
        self._book = WindowBook()
        self._reload = threading.Lock()

    # --- the book --------------------------------------------------------------------

    def book(self, tx: Tx | None = None) -> WindowBook:
        """The windows as of now: reloaded when the generation moved since the
        last load (read in ``tx`` when given, so the caller sees the windows its
        transaction sees)."""
        generation = (tx.one(GENERATION) if tx is not None else self.db.one(GENERATION))["generation"]
        if generation == self._book.generation:
            return self._book
        with self._reload:
            if generation != self._book.generation:
                rows = tx.all(ALL_WINDOWS) if tx is not None else self.db.all(ALL_WINDOWS)
                book = WindowBook()
                book.load(generation, (window_of(r) for r in rows))
                self._book = book
        return self._book

    # --- CRUD ------------------------------------------------------------------------

    def create(self, fields: dict[str, Any], created_by: str) -> Row:
        with self.db.transaction() as tx:
            self._check_service(tx, fields)
            row = tx.one(INSERT_WINDOW, dict({k: fields.get(k) for k in FIELDS}, created_by=created_by))
            tx.execute(BUMP_GENERATION)
            _audit(tx, "create", None, row)
        return row

    def get(self, window_id: int) -> Row:
        row = self.db.one(SELECT_WINDOW, (window_id,))
        if row is None:
            raise NotFound(f"maintenance window {window_id} does not exist")
        return row

    def list(self) -> list[Row]:
        return self.db.all(ALL_WINDOWS)

    def update(self, window_id: int, fields: dict[str, Any]) -> Row:
        with self.db.transaction() as tx:
            self._check_service(tx, fields)
            before = tx.one(SELECT_WINDOW + " FOR UPDATE", (window_id,))
            row = tx.one(UPDATE_WINDOW, dict({k: fields.get(k) for k in FIELDS}, window_id=window_id))
            if row is None:
                raise NotFound(f"maintenance window {window_id} does not exist")
            tx.execute(RELEASE_HELD, (window_id,))
            tx.execute(BUMP_GENERATION)
            _audit(tx, "update", before, row)
        return row

    def delete(self, window_id: int) -> None:
        with self.db.transaction() as tx:
            before = tx.one(SELECT_WINDOW + " FOR UPDATE", (window_id,))
            if before is not None:  # deleted while open: it ends now, as announced
                announcements.announce_deleted(tx, window_of(before))
            row = tx.one(DELETE_WINDOW, (window_id,))
            if row is None:
                raise NotFound(f"maintenance window {window_id} does not exist")
            tx.execute(RELEASE_HELD, (window_id,))
            tx.execute(BUMP_GENERATION)
            _audit(tx, "delete", row, None)

    @staticmethod
    def _check_service(tx: Tx, fields: dict[str, Any]) -> None:
        if fields.get("service_id") and tx.one(SERVICE_EXISTS, (fields["service_id"],)) is None:
            raise NotFound(f"service id {fields['service_id']} is not registered")


def is_open(window: Window, now: dt.datetime) -> bool:
    return window.open_at(now) is not None
