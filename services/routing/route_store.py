"""Alert routes (``alert_routes``): the route each alert took, and what routing
reads for a batch of events (each alert's remembered route, else its service's
targets and team) in one read transaction."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2.extras

from medic.db import Database, Row
from services.routing import active_hours, target_store, team_store
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
class TargetSkip:
    """A target an event was not sent to, and why."""
    alert_id: int
    event_id: str
    kind: str
    target_id: int
    reason: str


@dataclass(frozen=True)
class RouteToRemember:
    alert_id: int
    service_id: int
    event_id: str
    mode: str
    targets: tuple[PlannedTarget, ...]


SELECT_ALERT_ROUTES = "SELECT alert_id, mode, targets, unrouted FROM alert_routes WHERE alert_id = ANY(%s)"
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


def _planned_to_json(target: PlannedTarget) -> dict[str, Any]:
    item = {"type": target.type, "target_id": target.target_id, "config": dict(target.config)}
    if target.active_hours is not None:
        item["active_hours"] = target.active_hours.to_json()
    return item


def _planned_from_json(item: Mapping[str, Any]) -> PlannedTarget:
    return PlannedTarget(type=item["type"], target_id=item.get("target_id", 0),
                         config=item.get("config", {}), active_hours=active_hours.parse(item.get("active_hours")))


def _route_from_row(row: Row | None) -> AlertRoute | None:
    if row is None or row["unrouted"]:
        return None
    return AlertRoute(mode=row["mode"], targets=tuple(_planned_from_json(t) for t in row["targets"]))


RECORD_TARGET_SKIPS = """
    INSERT INTO target_skips (alert_id, event_id, kind, target_id, reason) VALUES %s
    ON CONFLICT (event_id, target_id) DO NOTHING
"""

LIST_TARGET_SKIPS = """
    SELECT skip_id, alert_id, event_id, kind, target_id, reason, at FROM target_skips
    WHERE alert_id = %s ORDER BY skip_id DESC LIMIT %s
"""


class RouteStore:
    def __init__(self, db: Database):
        self.db = db

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
                targets = target_store.targets_of_services(tx, sorted({e.service_id for e in open_events}))
                team_ids = sorted({e.team_id for e in open_events if e.team_id})
                names = sorted({e.team_name.strip() for e in open_events if e.team_name.strip()})
                if team_ids:
                    teams_by_id = team_store.teams_by_id(tx, team_ids)
                if names:
                    teams_by_name = team_store.teams_by_name(tx, names)
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

    def remember_routes(self, routes: Sequence[RouteToRemember], skips: Sequence[TargetSkip] = ()) -> None:
        """Records the routes of events delivery accepted (at most one per alert)
        and the targets those events were not sent to."""
        if not routes and not skips:
            return
        with self.db.transaction() as tx:
            if routes:
                tx.values(REMEMBER_ALERT_ROUTES, [
                    (r.alert_id, r.service_id, r.event_id, r.mode,
                     psycopg2.extras.Json([_planned_to_json(t) for t in r.targets]), not r.targets)
                    for r in routes])
            if skips:
                tx.values(RECORD_TARGET_SKIPS, [(k.alert_id, k.event_id, k.kind, k.target_id, k.reason)
                                                for k in skips])

    def target_skips(self, alert_id: int, limit: int) -> list[Row]:
        return self.db.all(LIST_TARGET_SKIPS, (alert_id, limit))
