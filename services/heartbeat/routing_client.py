"""The heartbeat service's calls to RoutingService: a batch of alert events
handed over in one ``RouteAlerts`` call, each event carrying every service fact
routing and delivery need; the same events to RemediationService
(``HandleAlertEvents``); and a service's team and targets for its snapshots
(``RoutingLookups``)."""
from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from medic import enums
from medic.authz.rules import identity_metadata
from medic.db import Row
from medic.interceptors import ACTOR_HEADER, current_identity
from medic.timestamps import to_timestamp
from medic.v1 import events_pb2, remediation_pb2, remediation_pb2_grpc, routing_pb2, routing_pb2_grpc
from services.heartbeat.snapshots import Related

log = logging.getLogger(__name__)

OK = grpc.StatusCode.OK.value[0]
CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def alert_event(row: Row) -> events_pb2.AlertEvent:
    """The event of an outbox row (``outbox_store.NOTIFICATION_DETAILS``)."""
    if row["alert_id"] is None:
        return _announcement(row)
    event = _alert_event(row)
    if row.get("job_run_id") is not None and row.get("run_status") is not None:
        event.run.CopyFrom(events_pb2.RunFacts(run_id=row["run_id"] or "", status=row["run_status"],
                                               output=row["run_output"] or ""))
    return event


def _alert_event(row: Row) -> events_pb2.AlertEvent:
    return events_pb2.AlertEvent(
        event_id=row["event_id"], kind=enums.ALERT_EVENT_KIND.numbers[row["kind"]], alert_id=row["alert_id"],
        reason=enums.ALERT_REASON.numbers[row["reason"]], service=_service_facts(row),
        opened_at=to_timestamp(row["opened_at"]), closed_at=to_timestamp(row["closed_at"]),
        occurred_at=to_timestamp(row["occurred_at"]))


def _announcement(row: Row) -> events_pb2.AlertEvent:
    """A maintenance window's WINDOW_STARTED or WINDOW_ENDED to one service."""
    return events_pb2.AlertEvent(
        event_id=row["event_id"], kind=enums.ALERT_EVENT_KIND.numbers[row["kind"]], service=_service_facts(row),
        occurred_at=to_timestamp(row["occurred_at"]),
        window=events_pb2.WindowFacts(window_id=row["window_id"], reason=row["window_reason"],
                                      starts_at=to_timestamp(row["window_starts_at"]),
                                      ends_at=to_timestamp(row["window_ends_at"])))


def _service_facts(row: Row) -> events_pb2.ServiceFacts:
    return events_pb2.ServiceFacts(
        service_id=row["service_id"], heartbeat_name=row["heartbeat_name"],
        service_name=row["service_name"], team=row["team"], team_id=row["team_id"] or 0,
        priority=enums.PRIORITY.numbers[row["priority"]], runbook=row["runbook"] or "",
        notify_mode=enums.NOTIFY_MODE.numbers[row["notify_mode"]],
        last_heartbeat_at=to_timestamp(row["last_heartbeat_at"]),
        alert_interval_seconds=row["alert_interval_seconds"])


def route_alerts_request(rows: list[Row]) -> routing_pb2.RouteAlertsRequest:
    return routing_pb2.RouteAlertsRequest(
        requests=[routing_pb2.RouteAlertRequest(event=alert_event(row)) for row in rows])


def refusal(result: routing_pb2.RouteAlertResult) -> str | None:
    """None when routing accepted the event, else why not."""
    if result.code == OK:
        return None
    return f"{CODE_NAMES.get(result.code, result.code)}: {result.message}"


class RoutingClient:
    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = routing_pb2_grpc.RoutingServiceStub(channel)
        self.timeout = timeout

    def route_alerts(self, request: routing_pb2.RouteAlertsRequest) -> routing_pb2.RouteAlertsResponse:
        """Raises ``grpc.RpcError`` when the call fails as a whole."""
        return self.stub.RouteAlerts(request, timeout=self.timeout)


def handle_alert_events_request(rows: list[Row]) -> remediation_pb2.HandleAlertEventsRequest:
    """The remediation hand-off's request: the same events routing gets."""
    return remediation_pb2.HandleAlertEventsRequest(events=[alert_event(row) for row in rows])


class RemediationClient:
    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = remediation_pb2_grpc.RemediationServiceStub(channel)
        self.timeout = timeout

    def handle_alert_events(self, request: remediation_pb2.HandleAlertEventsRequest
                            ) -> remediation_pb2.HandleAlertEventsResponse:
        """Raises ``grpc.RpcError`` when the call fails as a whole."""
        return self.stub.HandleAlertEvents(request, timeout=self.timeout)


class RoutingLookups:
    """What a service snapshot needs from routing (its team and targets), and
    re-creating a restored service's targets. Reads go as heartbeat itself
    (service credential); re-creating goes for the caller (its identity and
    actor propagated), so routing audits it as the caller's."""

    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = routing_pb2_grpc.RoutingServiceStub(channel)
        self.timeout = timeout

    def related(self, service_id: int, team_id: int | None) -> Related:
        """One service's team and targets; ``unavailable`` when routing does not answer."""
        try:
            targets = self.stub.ListNotificationTargets(
                routing_pb2.ListNotificationTargetsRequest(service_id=service_id), timeout=self.timeout).targets
            team = self._team(team_id) if team_id else None
        except grpc.RpcError as err:
            log.warning("routing did not answer for a snapshot of service %d: %s", service_id, err.code().name)
            return Related(unavailable=True)
        return Related(team=team, targets=[target_dict(t) for t in targets])

    def related_all(self) -> Callable[[Row], Related]:
        """Every service's team and targets, in two calls (a bulk change): a
        function of a service's row."""
        try:
            targets = self.stub.ListNotificationTargets(routing_pb2.ListNotificationTargetsRequest(),
                                                        timeout=self.timeout).targets
            teams = self.stub.ListTeams(routing_pb2.ListTeamsRequest(), timeout=self.timeout).teams
        except grpc.RpcError as err:
            log.warning("routing did not answer for the snapshots of a bulk change: %s", err.code().name)
            return lambda row: Related(unavailable=True)
        by_service: dict[int, list] = collections.defaultdict(list)
        for target in targets:
            by_service[target.service_id].append(target_dict(target))
        team_of = {t.team_id: team_dict(t) for t in teams}
        return lambda row: Related(team=team_of.get(row["team_id"]) if row["team_id"] else None,
                                   targets=list(by_service.get(row["service_id"], [])))

    def team_exists(self, team_id: int) -> bool | None:
        """Whether the team exists; None when routing does not answer."""
        try:
            return self._team(team_id) is not None
        except grpc.RpcError:
            return None

    def _team(self, team_id: int) -> dict | None:
        try:
            return team_dict(self.stub.GetTeam(routing_pb2.GetTeamRequest(team_id=team_id),
                                               timeout=self.timeout).team)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def recreate_targets(self, service_id: int, targets: list[dict]) -> list[str]:
        """Creates the targets anew for ``service_id``, as the caller; what failed, in words."""
        metadata = self._caller()
        failed = []
        for target in targets:
            failure = self._call("re-created", target, lambda: self.stub.CreateNotificationTarget(
                _create_request(service_id, target), metadata=metadata, timeout=self.timeout))
            if failure:
                failed.append(failure)
        return failed

    def restore_targets(self, service_id: int, wanted: list[dict], current: list[dict]) -> list[str]:
        """Puts ``service_id``'s targets back to ``wanted`` (a snapshot's) from
        ``current`` (as routing answered just before), as the caller: a target
        that still exists is updated where it differs, one deleted since is
        created anew (new id), one added since is deleted. What failed, in words."""
        metadata = self._caller()
        now = {t["target_id"]: t for t in current}
        kept = {t.get("target_id") for t in wanted}
        failed = []
        for target in wanted:
            existing = now.get(target.get("target_id"))
            if existing is None:
                call, verb = (lambda t=target: self.stub.CreateNotificationTarget(
                    _create_request(service_id, t), metadata=metadata, timeout=self.timeout)), "re-created"
            elif any(_setting(existing, k) != _setting(target, k) for k in TARGET_SETTINGS):
                call, verb = (lambda t=target: self.stub.UpdateNotificationTarget(
                    _update_request(t), metadata=metadata, timeout=self.timeout)), "restored"
            else:
                continue
            failure = self._call(verb, target, call)
            if failure:
                failed.append(failure)
        for target in current:
            if target["target_id"] not in kept:
                failure = self._call("deleted", target, lambda t=target: self.stub.DeleteNotificationTarget(
                    routing_pb2.DeleteNotificationTargetRequest(target_id=t["target_id"]),
                    metadata=metadata, timeout=self.timeout))
                if failure:
                    failed.append(failure)
        return failed

    @staticmethod
    def _caller() -> tuple:
        """Metadata that makes routing act (and audit) as the current caller."""
        identity = current_identity()
        metadata = identity_metadata(identity)
        if identity.actor:
            metadata = (*metadata, (ACTOR_HEADER, identity.actor))
        return metadata

    @staticmethod
    def _call(verb: str, target: dict, call: Callable[[], Any]) -> str | None:
        try:
            call()
        except grpc.RpcError as err:
            return f"its {target['type']} target {target.get('target_id')} could not be {verb} ({err.code().name})"
        return None


# What restoring a target puts back (besides its service).
TARGET_SETTINGS = ("type", "config", "priority", "enabled", "active_hours")


def _setting(target: dict, name: str) -> Any:
    """A target's setting as a snapshot or routing gives it (older snapshots lack active_hours)."""
    value = target.get(name)
    if name == "priority":
        return int(value or 0)
    if name == "enabled":
        return bool(target.get("enabled", True))
    return value or None


def _struct(values: dict | None) -> struct_pb2.Struct | None:
    if not values:
        return None
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _create_request(service_id: int, target: dict) -> routing_pb2.CreateNotificationTargetRequest:
    return routing_pb2.CreateNotificationTargetRequest(
        service_id=service_id, type=enums.TARGET_TYPE.numbers[target["type"]],
        config=_struct(target.get("config")) or struct_pb2.Struct(), priority=_setting(target, "priority"),
        enabled=_setting(target, "enabled"), active_hours=_struct(target.get("active_hours")))


def _update_request(target: dict) -> routing_pb2.UpdateNotificationTargetRequest:
    hours = _struct(target.get("active_hours"))
    return routing_pb2.UpdateNotificationTargetRequest(
        target_id=target["target_id"], type=enums.TARGET_TYPE.numbers[target["type"]],
        config=_struct(target.get("config")) or struct_pb2.Struct(), priority=_setting(target, "priority"),
        enabled=_setting(target, "enabled"), active_hours=hours, clear_active_hours=hours is None)


def target_dict(target: routing_pb2.NotificationTarget) -> dict[str, Any]:
    return {"target_id": target.target_id, "type": enums.TARGET_TYPE.names.get(target.type, ""),
            "config": json_format.MessageToDict(target.config), "priority": target.priority,
            "enabled": target.enabled,
            "active_hours": json_format.MessageToDict(target.active_hours) if target.HasField("active_hours")
            else None}


def team_dict(team: routing_pb2.Team) -> dict[str, Any]:
    return {"team_id": team.team_id, "name": team.name, "slack_channel_id": team.slack_channel_id or None}
