"""Notification targets (``notification_targets``): where a service's alerts go,
by priority. A target follows its service (foreign key, ON DELETE CASCADE)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg2.extras

from medic import audit
from medic.db import Database, Row, Tx, update_locked
from medic.errors import MissingReference, NotFound
from services.routing import active_hours
from services.routing.active_hours import ActiveHours
from services.routing.selection import NotificationTarget

TARGET_COLUMNS = "target_id, service_id, type, config, priority, enabled, active_hours, created_at, updated_at"

INSERT_TARGET = f"""
    INSERT INTO notification_targets (service_id, type, config, priority, enabled, active_hours)
    VALUES (%(service_id)s, %(type)s, %(config)s, %(priority)s, %(enabled)s, %(active_hours)s)
    RETURNING {TARGET_COLUMNS}
"""
SELECT_TARGET = f"SELECT {TARGET_COLUMNS} FROM notification_targets WHERE target_id = %s"
SELECT_TARGET_FOR_UPDATE = SELECT_TARGET + " FOR UPDATE"
LIST_TARGETS = f"""
    SELECT {TARGET_COLUMNS} FROM notification_targets {{where}}
    ORDER BY service_id, priority, target_id
"""
UPDATE_TARGET = f"""
    UPDATE notification_targets SET {{assignments}}, updated_at = now()
    WHERE target_id = %(target_id)s
    RETURNING {TARGET_COLUMNS}
"""
DELETE_TARGET = f"DELETE FROM notification_targets WHERE target_id = %s RETURNING {TARGET_COLUMNS}"
# All of the services' targets, disabled ones too: RouteAlert reports those as skipped.
SERVICES_TARGETS = f"""
    SELECT {TARGET_COLUMNS} FROM notification_targets WHERE service_id = ANY(%s)
    ORDER BY service_id, priority, target_id
"""

TARGET_FIELDS = ("type", "config", "priority", "enabled", "active_hours")
AUDITED = ("target_id", "service_id", "type", "config", "priority", "enabled", "active_hours")
# A PagerDuty routing key and a webhook's headers (its credentials) are secrets.
SECRETS = ("config.routing_key", "config.headers")


def _audit(tx: Tx, action: str, before: Row | None, after: Row | None) -> None:
    row = after or before
    audit.record(tx, source="routing", action_type=action, resource="notification_target",
                 resource_id=row["target_id"], service_id=row["service_id"], secrets=SECRETS,
                 before=None if before is None else {k: before[k] for k in AUDITED},
                 after=None if after is None else {k: after[k] for k in AUDITED})


def target_from_row(row: Row) -> NotificationTarget:
    return NotificationTarget(target_id=row["target_id"], service_id=row["service_id"],
                              type=row["type"], config=row["config"], priority=row["priority"],
                              enabled=row["enabled"], active_hours=active_hours.parse(row["active_hours"]))


def targets_of_services(tx: Tx, service_ids: Sequence[int]) -> dict[int, list[NotificationTarget]]:
    """Each service's targets (those that have any), by priority then id."""
    targets: dict[int, list[NotificationTarget]] = {}
    for row in tx.all(SERVICES_TARGETS, (list(service_ids),)):
        targets.setdefault(row["service_id"], []).append(target_from_row(row))
    return targets


def _hours_json(hours: ActiveHours | None):
    return psycopg2.extras.Json(hours.to_json()) if hours is not None else None


class TargetStore:
    def __init__(self, db: Database):
        self.db = db

    def create_target(self, service_id: int, target_type: str, config: Mapping[str, Any],
                      priority: int, enabled: bool, hours: ActiveHours | None = None) -> Row:
        params = {"service_id": service_id, "type": target_type,
                  "config": psycopg2.extras.Json(dict(config)), "priority": priority,
                  "enabled": enabled, "active_hours": _hours_json(hours)}
        try:
            with self.db.transaction() as tx:
                row = tx.one(INSERT_TARGET, params)
                _audit(tx, "create", None, row)
                return row
        except MissingReference as err:
            # Every field was validated before; what the database can still
            # refuse is the service reference.
            raise NotFound(f"service {service_id} not found") from err

    def target(self, target_id: int) -> Row:
        row = self.db.one(SELECT_TARGET, (target_id,))
        if row is None:
            raise NotFound(f"notification target {target_id} not found")
        return row

    def targets(self, service_id: int | None = None) -> list[Row]:
        if service_id is None:
            return self.db.all(LIST_TARGETS.format(where=""))
        return self.db.all(LIST_TARGETS.format(where="WHERE service_id = %(service_id)s"),
                           {"service_id": service_id})

    def update_target(self, target_id: int, fields: Mapping[str, Any]) -> Row:
        params = dict(fields)
        if "config" in params:
            params["config"] = psycopg2.extras.Json(dict(params["config"]))
        if "active_hours" in params:
            params["active_hours"] = _hours_json(params["active_hours"])
        with self.db.transaction() as tx:
            before, row = update_locked(tx, SELECT_TARGET_FOR_UPDATE, UPDATE_TARGET, TARGET_FIELDS,
                                        ("target_id", target_id), params,
                                        f"notification target {target_id} not found")
            _audit(tx, "update", before, row)
            return row

    def delete_target(self, target_id: int) -> None:
        with self.db.transaction() as tx:
            row = tx.one(DELETE_TARGET, (target_id,))
            if row is None:
                raise NotFound(f"notification target {target_id} not found")
            _audit(tx, "delete", row, None)

