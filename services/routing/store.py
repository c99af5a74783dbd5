"""The routing domain's tables: teams, notification_targets, alert_routes.

All SQL of the domain lives here. The one statement that touches another
domain's table is none: ``services.team_id`` is kept consistent by its foreign
key (ON DELETE SET NULL), and notification targets follow their service by
ON DELETE CASCADE.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2.extras

from medic.db import Database, Row
from medic.errors import MissingReference, NotFound
from services.routing.selection import AlertRoute, NotificationTarget, PlannedTarget, Team

@dataclass(frozen=True)
class EventKeys:
    """What routing reads its tables by, for one event."""
    alert_id: int
    service_id: int
    team_id: int
    team_name: str


@dataclass(frozen=True)
class RoutingInputs:
    """The alert's remembered route, else the service's targets and team."""
    route: AlertRoute | None
    targets: list[NotificationTarget]
    team: Team | None


@dataclass(frozen=True)
class RouteToRemember:
    alert_id: int
    service_id: int
    event_id: str
    mode: str
    targets: tuple[PlannedTarget, ...]


TEAM_COLUMNS = "team_id, name, slack_channel_id, created_at, updated_at"
TARGET_COLUMNS = "target_id, service_id, type, config, priority, enabled, created_at, updated_at"

INSERT_TEAM = f"""
    INSERT INTO teams (name, slack_channel_id) VALUES (%(name)s, %(slack_channel_id)s)
    RETURNING {TEAM_COLUMNS}
"""
SELECT_TEAM_BY_ID = f"SELECT {TEAM_COLUMNS} FROM teams WHERE team_id = %s"
SELECT_TEAM_BY_NAME = f"SELECT {TEAM_COLUMNS} FROM teams WHERE lower(name) = lower(%s)"
LIST_TEAMS = f"SELECT {TEAM_COLUMNS} FROM teams ORDER BY team_id"
UPDATE_TEAM = f"""
    UPDATE teams SET {{assignments}}, updated_at = now() WHERE team_id = %(team_id)s
    RETURNING {TEAM_COLUMNS}
"""
DELETE_TEAM = "DELETE FROM teams WHERE team_id = %s"

INSERT_TARGET = f"""
    INSERT INTO notification_targets (service_id, type, config, priority, enabled)
    VALUES (%(service_id)s, %(type)s, %(config)s, %(priority)s, %(enabled)s)
    RETURNING {TARGET_COLUMNS}
"""
SELECT_TARGET = f"SELECT {TARGET_COLUMNS} FROM notification_targets WHERE target_id = %s"
LIST_TARGETS = f"""
    SELECT {TARGET_COLUMNS} FROM notification_targets {{where}}
    ORDER BY service_id, priority, target_id
"""
UPDATE_TARGET = f"""
    UPDATE notification_targets SET {{assignments}}, updated_at = now()
    WHERE target_id = %(target_id)s
    RETURNING {TARGET_COLUMNS}
"""
DELETE_TARGET = "DELETE FROM notification_targets WHERE target_id = %s"
# All of a service's targets, disabled ones too: RouteAlert reports those as skipped.
SELECT_ALERT_ROUTES = "SELECT alert_id, mode, targets, unrouted FROM alert_routes WHERE alert_id = ANY(%s)"
SERVICES_TARGETS = f"""
    SELECT {TARGET_COLUMNS} FROM notification_targets WHERE service_id = ANY(%s)
    ORDER BY service_id, priority, target_id
"""
SELECT_TEAMS_BY_ID = f"SELECT {TEAM_COLUMNS} FROM teams WHERE team_id = ANY(%s)"
# Each asked name with the team it names (case-insensitive, as SELECT_TEAM_BY_NAME).
SELECT_TEAMS_BY_NAME = """
    SELECT n.asked, t.team_id, t.name, t.slack_channel_id, t.created_at, t.updated_at
    FROM unnest(%s::text[]) AS n (asked) JOIN teams t ON lower(t.name) = lower(n.asked)
"""
# The first routed event of an alert fixes its route; an unrouted record is
# replaced when a later event finds targets, never the other way round.
REMEMBER_ALERT_ROUTES = """
    INSERT INTO alert_routes (alert_id, service_id, event_id, mode, targets, unrouted)
    VALUES %s
    ON CONFLICT (alert_id) DO UPDATE
    SET event_id = EXCLUDED.event_id, mode = EXCLUDED.mode, targets = EXCLUDED.targets,
        unrouted = EXCLUDED.unrouted, routed_at = now()
    WHERE alert_routes.unrouted AND NOT EXCLUDED.unrouted
"""

TEAM_FIELDS = ("name", "slack_channel_id")
TARGET_FIELDS = ("type", "config", "priority", "enabled")


def _assignments(fields: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    # Column names come from the fixed `allowed` list, never from the request.
    return ", ".join(f"{name} = %({name})s" for name in allowed if name in fields)


def target_from_row(row: Row) -> NotificationTarget:
    return NotificationTarget(target_id=row["target_id"], service_id=row["service_id"],
                              type=row["type"], config=row["config"], priority=row["priority"],
                              enabled=row["enabled"])


def team_from_row(row: Row) -> Team:
    return Team(team_id=row["team_id"], name=row["name"], slack_channel_id=row["slack_channel_id"])


def _planned_to_json(target: PlannedTarget) -> dict[str, Any]:
    return {"type": target.type, "target_id": target.target_id, "config": dict(target.config)}


def _planned_from_json(item: Mapping[str, Any]) -> PlannedTarget:
    return PlannedTarget(type=item["type"], target_id=item.get("target_id", 0),
                         config=item.get("config", {}))


class RoutingStore:
    def __init__(self, db: Database):
        self.db = db

    # --- teams -------------------------------------------------------------
    def create_team(self, name: str, slack_channel_id: str | None) -> Row:
        return self.db.one(INSERT_TEAM, {"name": name, "slack_channel_id": slack_channel_id})

    def team(self, team_id: int) -> Row:
        row = self.db.one(SELECT_TEAM_BY_ID, (team_id,))
        if row is None:
            raise NotFound(f"team {team_id} not found")
        return row

    def team_by_name(self, name: str) -> Row:
        row = self.db.one(SELECT_TEAM_BY_NAME, (name,))
        if row is None:
            raise NotFound(f"team {name!r} not found")
        return row

    def teams(self) -> list[Row]:
        return self.db.all(LIST_TEAMS)

    def update_team(self, team_id: int, fields: Mapping[str, Any]) -> Row:
        if not fields:
            return self.team(team_id)
        sql = UPDATE_TEAM.format(assignments=_assignments(fields, TEAM_FIELDS))
        row = self.db.one(sql, {**fields, "team_id": team_id})
        if row is None:
            raise NotFound(f"team {team_id} not found")
        return row

    def delete_team(self, team_id: int) -> None:
        if self.db.execute(DELETE_TEAM, (team_id,)) == 0:
            raise NotFound(f"team {team_id} not found")

    # --- notification targets ------------------------------------------------
    def create_target(self, service_id: int, target_type: str, config: Mapping[str, Any],
                      priority: int, enabled: bool) -> Row:
        params = {"service_id": service_id, "type": target_type,
                  "config": psycopg2.extras.Json(dict(config)), "priority": priority,
                  "enabled": enabled}
        try:
            return self.db.one(INSERT_TARGET, params)
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
        if not fields:
            return self.target(target_id)
        params = dict(fields)
        if "config" in params:
            params["config"] = psycopg2.extras.Json(dict(params["config"]))
        sql = UPDATE_TARGET.format(assignments=_assignments(fields, TARGET_FIELDS))
        row = self.db.one(sql, {**params, "target_id": target_id})
        if row is None:
            raise NotFound(f"notification target {target_id} not found")
        return row

    def delete_target(self, target_id: int) -> None:
        if self.db.execute(DELETE_TARGET, (target_id,)) == 0:
            raise NotFound(f"notification target {target_id} not found")

    # --- alert routes ----------------------------------------------------------
    def routing_inputs(self, events: Sequence[EventKeys]) -> list[RoutingInputs]:
        """What selection needs for each event, read in one transaction with one
        query per table: the alert's remembered route, else the service's
        targets and its team (by id, else by its legacy team name)."""
        alert_ids = sorted({e.alert_id for e in events})
        with self.db.transaction() as tx:
            routes = {r["alert_id"]: _route_from_row(r) for r in tx.all(SELECT_ALERT_ROUTES, (alert_ids,))}
            open_events = [e for e in events if routes.get(e.alert_id) is None]
            targets: dict[int, list[NotificationTarget]] = {}
            teams_by_id: dict[int, Team] = {}
            teams_by_name: dict[str, Team] = {}
            if open_events:
                for row in tx.all(SERVICES_TARGETS, (sorted({e.service_id for e in open_events}),)):
                    targets.setdefault(row["service_id"], []).append(target_from_row(row))
                team_ids = sorted({e.team_id for e in open_events if e.team_id})
                names = sorted({e.team_name.strip() for e in open_events if e.team_name.strip()})
                if team_ids:
                    teams_by_id = {r["team_id"]: team_from_row(r) for r in tx.all(SELECT_TEAMS_BY_ID, (team_ids,))}
                if names:
                    teams_by_name = {r["asked"]: team_from_row(r) for r in tx.all(SELECT_TEAMS_BY_NAME, (names,))}
        inputs = []
        for e in events:
            route = routes.get(e.alert_id)
            if route is not None:
                inputs.append(RoutingInputs(route, [], None))
                continue
            team = teams_by_id.get(e.team_id) if e.team_id else None
            if team is None and e.team_name.strip():
                team = teams_by_name.get(e.team_name.strip())
            inputs.append(RoutingInputs(None, targets.get(e.service_id, []), team))
        return inputs

    def remember_routes(self, routes: Sequence[RouteToRemember]) -> None:
        """Records the routes of events delivery accepted (at most one per alert)."""
        if not routes:
            return
        with self.db.transaction() as tx:
            tx.values(REMEMBER_ALERT_ROUTES, [
                (r.alert_id, r.service_id, r.event_id, r.mode,
                 psycopg2.extras.Json([_planned_to_json(t) for t in r.targets]), not r.targets)
                for r in routes])


def _route_from_row(row: Row | None) -> AlertRoute | None:
    if row is None or row["unrouted"]:
        return None
    return AlertRoute(mode=row["mode"], targets=tuple(_planned_from_json(t) for t in row["targets"]))
