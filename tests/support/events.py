"""Alert events and planned targets, as heartbeat and routing send them."""
from __future__ import annotations

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from medic.v1 import common_pb2, delivery_pb2, events_pb2, heartbeat_pb2

KINDS = {"trigger": events_pb2.ALERT_EVENT_KIND_TRIGGER,
         "reminder": events_pb2.ALERT_EVENT_KIND_REMINDER,
         "resolve": events_pb2.ALERT_EVENT_KIND_RESOLVE}


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def alert_event(alert: int | heartbeat_pb2.Service = 1, kind: str | int = "trigger", *,
                alert_id: int | None = None, event_id: str | None = None, seq: str = "",
                service_id: int = 7, priority=common_pb2.PRIORITY_P2,
                team_id: int | None = None) -> events_pb2.AlertEvent:
    """An alert event of ``kind`` (a name, or an ``AlertEventKind`` value), with id
    ``alert-<alert_id>-<kind><seq>``. ``alert`` is the alert id, the service being
    a fixed one (``service_id``, ``priority``, team 3); or a registered
    ``Service``, whose facts the event carries (alert ``alert_id``, default 1;
    team id ``team_id``, default none)."""
    kind_value = KINDS[kind] if isinstance(kind, str) else kind
    kind_name = events_pb2.AlertEventKind.Name(kind_value).removeprefix("ALERT_EVENT_KIND_").lower()
    if isinstance(alert, heartbeat_pb2.Service):
        alert_id = 1 if alert_id is None else alert_id
        facts = events_pb2.ServiceFacts(
            service_id=alert.service_id, heartbeat_name=alert.heartbeat_name,
            service_name=alert.service_name, team=alert.team, team_id=team_id or 0,
            priority=alert.priority, notify_mode=alert.notify_mode,
            alert_interval_seconds=alert.alert_interval_seconds)
    else:
        alert_id = alert if alert_id is None else alert_id
        facts = events_pb2.ServiceFacts(
            service_id=service_id, heartbeat_name="nightly-backup", service_name="Backup",
            team="storage", team_id=3 if team_id is None else team_id, priority=priority,
            runbook="https://runbooks/backup", alert_interval_seconds=60)
    event = events_pb2.AlertEvent(
        event_id=event_id or f"alert-{alert_id}-{kind_name}{seq}", kind=kind_value,
        alert_id=alert_id, reason=heartbeat_pb2.ALERT_REASON_MISSED_HEARTBEATS, service=facts,
        opened_at=_now(), occurred_at=_now())
    if kind_value == events_pb2.ALERT_EVENT_KIND_RESOLVE:
        event.closed_at.CopyFrom(_now())
    return event


def target_config(**values) -> struct_pb2.Struct:
    """A notification target's or planned target's config."""
    out = struct_pb2.Struct()
    out.update(values)
    return out


def webhook_target(url: str, headers: dict | None = None, target_id: int = 0,
                   webhook_id: int = 0) -> delivery_pb2.PlannedTarget:
    config = {"url": url}
    if headers:
        config["headers"] = headers
    return delivery_pb2.PlannedTarget(type=delivery_pb2.TARGET_TYPE_WEBHOOK, target_id=target_id,
                                      webhook_id=webhook_id, config=target_config(**config))


def slack_target(channel: str, target_id: int = 0) -> delivery_pb2.PlannedTarget:
    return delivery_pb2.PlannedTarget(type=delivery_pb2.TARGET_TYPE_SLACK, target_id=target_id,
                                      config=target_config(channel_id=channel))


def pagerduty_target(routing_key: str, target_id: int = 0) -> delivery_pb2.PlannedTarget:
    return delivery_pb2.PlannedTarget(type=delivery_pb2.TARGET_TYPE_PAGERDUTY, target_id=target_id,
                                      config=target_config(routing_key=routing_key))
