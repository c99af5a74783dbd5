"""RoutingService: converts protobuf <-> domain values and validates requests.

Errors are raised as ``medic.errors`` types; the shared interceptor maps them
to status codes.
"""
from __future__ import annotations

from google.protobuf import json_format

from medic import enums
from medic.contracts import required_name
from medic.db import Row
from medic.errors import InvalidArgument, MedicError
from medic.timestamps import to_timestamp
from medic.v1 import events_pb2, routing_pb2, routing_pb2_grpc
from services.routing import active_hours, selection as rule
from services.routing.active_hours import ActiveHours
from services.routing.delivery_client import planned_to_pb, struct
from services.routing.router import Refused, RouteRequest, Router, sequence_of
from services.routing.target_store import TargetStore
from services.routing.team_store import TeamStore
from services.routing.target_config import validate_config

MAX_NAME_LENGTH = 255
MAX_ROUTE_BATCH = 256


def team_to_pb(row: Row) -> routing_pb2.Team:
    return routing_pb2.Team(team_id=row["team_id"], name=row["name"],
                            slack_channel_id=row["slack_channel_id"] or "",
                            created_at=to_timestamp(row["created_at"]), updated_at=to_timestamp(row["updated_at"]))


def target_to_pb(row: Row) -> routing_pb2.NotificationTarget:
    return routing_pb2.NotificationTarget(
        target_id=row["target_id"], service_id=row["service_id"],
        type=enums.TARGET_TYPE.numbers[row["type"]], config=struct(row["config"]), priority=row["priority"],
        enabled=row["enabled"], created_at=to_timestamp(row.get("created_at")),
        updated_at=to_timestamp(row.get("updated_at")),
        active_hours=struct(row["active_hours"]) if row.get("active_hours") else None)


def skipped_to_pb(target: rule.NotificationTarget) -> routing_pb2.NotificationTarget:
    return routing_pb2.NotificationTarget(
        target_id=target.target_id, service_id=target.service_id, type=enums.TARGET_TYPE.numbers[target.type],
        config=struct(target.config), priority=target.priority, enabled=target.enabled)


def _channel(value: str) -> str | None:
    """An empty channel id means "no channel"."""
    value = value.strip()
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"slack_channel_id must be at most {MAX_NAME_LENGTH} characters")
    return value or None


def _id(value: int, field: str) -> int:
    if value < 1:
        raise InvalidArgument(f"{field} must be >= 1")
    return value


def _target_type(value: int) -> str:
    if value not in enums.TARGET_TYPE.names:
        raise InvalidArgument("type must be one of slack, pagerduty, webhook")
    return enums.TARGET_TYPE.names[value]


def _active_hours(request) -> ActiveHours | None:
    """The request's working hours, checked; None when not given."""
    if not request.HasField("active_hours"):
        return None
    return active_hours.parse(json_format.MessageToDict(request.active_hours))


def _config(request) -> dict | None:
    """The request's config as plain JSON values; None when not given."""
    if not request.HasField("config"):
        return None
    return json_format.MessageToDict(request.config)


class RoutingServicer(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, teams: TeamStore, targets: TargetStore, router: Router, *, allow_private_webhooks: bool):
        self.teams = teams
        self.targets = targets
        self.router = router
        self.allow_private_webhooks = allow_private_webhooks

    # --- teams ---------------------------------------------------------------
    def CreateTeam(self, request, context):
        row = self.teams.create_team(required_name(request.name, "name"),
                                     _channel(request.slack_channel_id))
        return routing_pb2.CreateTeamResponse(team=team_to_pb(row))

    def GetTeam(self, request, context):
        which = request.WhichOneof("team")
        if which == "team_id":
            row = self.teams.team(_id(request.team_id, "team_id"))
        elif which == "name":
            row = self.teams.team_by_name(required_name(request.name, "name"))
        else:
            raise InvalidArgument("team_id or name is required")
        return routing_pb2.GetTeamResponse(team=team_to_pb(row))

    def ListTeams(self, request, context):
        return routing_pb2.ListTeamsResponse(teams=[team_to_pb(r) for r in self.teams.teams()])

    def UpdateTeam(self, request, context):
        team_id = _id(request.team_id, "team_id")
        fields = {}
        if request.HasField("name"):
            fields["name"] = required_name(request.name, "name")
        if request.HasField("slack_channel_id"):
            fields["slack_channel_id"] = _channel(request.slack_channel_id)
        return routing_pb2.UpdateTeamResponse(team=team_to_pb(self.teams.update_team(team_id, fields)))

    def DeleteTeam(self, request, context):
        self.teams.delete_team(_id(request.team_id, "team_id"))
        return routing_pb2.DeleteTeamResponse()

    # --- notification targets --------------------------------------------------
    def CreateNotificationTarget(self, request, context):
        service_id = _id(request.service_id, "service_id")
        target_type = _target_type(request.type)
        config = validate_config(target_type, _config(request),
                                 allow_private=self.allow_private_webhooks)
        enabled = request.enabled if request.HasField("enabled") else True
        row = self.targets.create_target(service_id, target_type, config, request.priority, enabled,
                                         _active_hours(request))
        return routing_pb2.CreateNotificationTargetResponse(target=target_to_pb(row))

    def ListNotificationTargets(self, request, context):
        service_id = _id(request.service_id, "service_id") if request.HasField("service_id") else None
        rows = self.targets.targets(service_id)
        return routing_pb2.ListNotificationTargetsResponse(targets=[target_to_pb(r) for r in rows])

    def UpdateNotificationTarget(self, request, context):
        target_id = _id(request.target_id, "target_id")
        fields = {}
        config = _config(request)
        if request.type or config is not None:
            current = self.targets.target(target_id)
            target_type = _target_type(request.type) if request.type else current["type"]
            if config is None:
                config = current["config"]
            fields["type"] = target_type
            fields["config"] = validate_config(target_type, config,
                                              allow_private=self.allow_private_webhooks)
        if request.HasField("priority"):
            fields["priority"] = request.priority
        if request.HasField("enabled"):
            fields["enabled"] = request.enabled
        if request.clear_active_hours:
            if request.HasField("active_hours"):
                raise InvalidArgument("give active_hours or clear_active_hours, not both")
            fields["active_hours"] = None
        elif request.HasField("active_hours"):
            fields["active_hours"] = _active_hours(request)
        row = self.targets.update_target(target_id, fields)
        return routing_pb2.UpdateNotificationTargetResponse(target=target_to_pb(row))

    def DeleteNotificationTarget(self, request, context):
        self.targets.delete_target(_id(request.target_id, "target_id"))
        return routing_pb2.DeleteNotificationTargetResponse()

    def ListTargetSkips(self, request, context):
        alert_id = _id(request.alert_id, "alert_id")
        if not 0 <= request.limit <= 1000:
            raise InvalidArgument("limit must be 0-1000")
        rows = self.router.store.target_skips(alert_id, request.limit or 100)
        return routing_pb2.ListTargetSkipsResponse(skips=[routing_pb2.TargetSkip(
            skip_id=r["skip_id"], alert_id=r["alert_id"], event_id=r["event_id"], kind=r["kind"],
            target_id=r["target_id"], reason=r["reason"], at=to_timestamp(r["at"])) for r in rows])

    # --- routing -------------------------------------------------------------------
    def RouteAlert(self, request, context):
        plan, enqueued = self.router.route_alert(*_route_request(request))
        return _route_response(plan, enqueued)

    def RouteAlerts(self, request, context):
        count = len(request.requests)
        if not 1 <= count <= MAX_ROUTE_BATCH:
            raise InvalidArgument(f"a batch holds 1 to {MAX_ROUTE_BATCH} requests, not {count}")
        items: list[RouteRequest | Refused] = []
        for item in request.requests:
            try:
                items.append(RouteRequest(*_route_request(item)))
            except InvalidArgument as err:
                items.append(Refused(sequence_of(item.event), err))
        results = []
        for outcome in self.router.route_alerts(items):
            if isinstance(outcome, MedicError):
                results.append(routing_pb2.RouteAlertResult(code=outcome.code.value[0],
                                                            message=outcome.message))
            else:
                results.append(routing_pb2.RouteAlertResult(
                    response=_route_response(outcome.plan, outcome.enqueued)))
        return routing_pb2.RouteAlertsResponse(results=results)


def _route_request(request: routing_pb2.RouteAlertRequest) -> tuple[events_pb2.AlertEvent, str, str | None]:
    """(event, kind, mode override) of a valid request; InvalidArgument otherwise."""
    event = request.event
    if not event.event_id.strip():
        raise InvalidArgument("event.event_id is required")
    if event.kind not in enums.ALERT_EVENT_KIND.names:
        raise InvalidArgument("event.kind must be TRIGGER, REMINDER, RESOLVE, ACKNOWLEDGE, WINDOW_STARTED or "
                              "WINDOW_ENDED")
    kind = enums.ALERT_EVENT_KIND.names[event.kind]
    if kind in rule.ANNOUNCEMENTS:
        if event.alert_id or not event.HasField("window") or event.window.window_id < 1:
            raise InvalidArgument("a window announcement has event.window (window_id >= 1) and no event.alert_id")
    else:
        _id(event.alert_id, "event.alert_id")
    _id(event.service.service_id, "event.service.service_id")
    override = None
    if request.mode_override:
        if request.mode_override not in enums.NOTIFY_MODE.names:
            raise InvalidArgument("mode_override must be NOTIFY_MODE_ALL or "
                                  "NOTIFY_MODE_UNTIL_SUCCESS")
        override = enums.NOTIFY_MODE.names[request.mode_override]
    return event, kind, override


def _route_response(plan: rule.RoutingPlan, enqueued: bool) -> routing_pb2.RouteAlertResponse:
    return routing_pb2.RouteAlertResponse(
        mode=enums.NOTIFY_MODE.numbers[plan.mode], source=enums.ROUTE_SOURCE.numbers[plan.source],
        targets=[planned_to_pb(t) for t in plan.targets],
        skipped=[skipped_to_pb(t) for t in plan.skipped],
        subscriptions=[planned_to_pb(s) for s in plan.subscriptions],
        unrouted=plan.unrouted, enqueued=enqueued)
