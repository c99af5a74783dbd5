"""Working hours on targets, through real routing and delivery to local Slack and
PagerDuty receivers. The clock is injected: routing judges an event by the time
it happened (``occurred_at``), so the events below happen at 10:00 and 22:00 in
Berlin whatever the time of the test."""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf import struct_pb2

from medic.server import create_server
from medic.v1 import delivery_pb2, routing_pb2, routing_pb2_grpc
from services.delivery import app as delivery_app
from tests.support.authorizers import AllowAll
from tests.support.events import alert_event
from tests.support.events import target_config as config
from tests.support.receivers import PagerDutyReceiver, SlackReceiver
from tests.support.routing import register_service, start_routing

OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00", "timezone": "Europe/Berlin"}
BERLIN = ZoneInfo("Europe/Berlin")
TEN_AM = dt.datetime(2026, 1, 13, 10, 0, tzinfo=BERLIN)   # a Tuesday
TEN_PM = dt.datetime(2026, 1, 13, 22, 0, tzinfo=BERLIN)


def hours(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


@pytest.fixture
def receivers():
    with SlackReceiver() as slack, PagerDutyReceiver() as pagerduty:
        yield slack, pagerduty


@pytest.fixture
def routing(settings, db, receivers):
    slack, pagerduty = receivers
    delivery_settings = dataclasses.replace(
        settings, slack_api_url=slack.url, pagerduty_events_url=pagerduty.events_url, webhook_allow_private=True,
        delivery_retry_delays=(0.2, 0.5), slack_token="xoxb-test")
    delivery = create_server(delivery_app.build(delivery_settings), port=0, workers=8, authorizer=AllowAll())
    running = start_routing(settings, db, delivery.port, "")
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield routing_pb2_grpc.RoutingServiceStub(channel)
    channel.close()
    running.stop(grace=1)
    delivery.stop(grace=1)


def at(event, when: dt.datetime):
    event.occurred_at.FromDatetime(when.astimezone(dt.timezone.utc))
    return event


def office_slack_and_pagerduty(routing, heartbeats, name, *, mode=None, pagerduty_hours=None):
    service = register_service(heartbeats, name, **({"mode": mode} if mode else {}))
    slack = routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK, config=config(channel_id="COFFICE"),
        priority=0, active_hours=hours(OFFICE))).target
    extra = {"active_hours": hours(pagerduty_hours)} if pagerduty_hours else {}
    pagerduty = routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_PAGERDUTY,
        config=config(routing_key="R0UT1NG"), priority=1, **extra)).target
    return service, slack, pagerduty


def settle(receivers, seconds=1.0):
    time.sleep(seconds)  # deliveries still on their way would arrive by now
    return [r.json()["channel"] for r in receivers[0].requests], [r.json() for r in receivers[1].requests]


def test_office_hours_slack_always_pagerduty_at_ten_and_at_twenty_two(routing, heartbeats, receivers):
    service, slack_target, _ = office_slack_and_pagerduty(routing, heartbeats, "billing")
    assert dict(slack_target.active_hours)["timezone"] == "Europe/Berlin"

    morning = routing.RouteAlert(routing_pb2.RouteAlertRequest(event=at(alert_event(service, alert_id=1), TEN_AM)))
    assert [t.type for t in morning.targets] == [delivery_pb2.TARGET_TYPE_SLACK, delivery_pb2.TARGET_TYPE_PAGERDUTY]
    receivers[1].wait_for(1)
    receivers[0].wait_for(1)

    night = routing.RouteAlert(routing_pb2.RouteAlertRequest(event=at(alert_event(service, alert_id=2), TEN_PM)))
    assert [t.type for t in night.targets] == [delivery_pb2.TARGET_TYPE_PAGERDUTY]
    receivers[1].wait_for(2)
    channels, pages = settle(receivers)
    assert channels == ["COFFICE"]  # only the morning alert reached Slack
    assert [p["event_action"] for p in pages] == ["trigger", "trigger"]
    skips = routing.ListTargetSkips(routing_pb2.ListTargetSkipsRequest(alert_id=2)).skips
    assert [(s.target_id, s.reason, s.kind) for s in skips] == [
        (slack_target.target_id, "outside_active_hours", "trigger")]
    assert routing.ListTargetSkips(routing_pb2.ListTargetSkipsRequest(alert_id=1)).skips == []

    # The night alert resolves: PagerDuty hears it, Slack (never told) does not.
    routing.RouteAlert(routing_pb2.RouteAlertRequest(event=at(alert_event(service, "resolve", alert_id=2), TEN_PM)))
    receivers[1].wait_for(3)
    channels, pages = settle(receivers)
    assert channels == ["COFFICE"] and pages[-1]["event_action"] == "resolve"


def test_pagerduty_only_out_of_hours_and_until_success_moves_past_an_inactive_target(
        routing, heartbeats, receivers):
    nights = {**OFFICE, "from": "17:00", "to": "09:00"}
    service, _, _ = office_slack_and_pagerduty(routing, heartbeats, "search", pagerduty_hours=nights)
    routing.RouteAlert(routing_pb2.RouteAlertRequest(event=at(alert_event(service, alert_id=11), TEN_AM)))
    routing.RouteAlert(routing_pb2.RouteAlertRequest(event=at(alert_event(service, alert_id=12), TEN_PM)))
    receivers[0].wait_for(1)
    receivers[1].wait_for(1)
    channels, pages = settle(receivers)
    assert channels == ["COFFICE"] and [p["dedup_key"].endswith("12") for p in pages] == [True]

    # Until success, at night: the first target is outside its hours, so PagerDuty is tried at once.
    from medic.v1 import common_pb2
    chained, _, _ = office_slack_and_pagerduty(routing, heartbeats, "chained",
                                               mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)
    plan = routing.RouteAlert(routing_pb2.RouteAlertRequest(event=at(alert_event(chained, alert_id=21), TEN_PM)))
    assert plan.mode == common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
    assert [t.type for t in plan.targets] == [delivery_pb2.TARGET_TYPE_PAGERDUTY]
    receivers[1].wait_for(2, timeout=5)


def test_bad_working_hours_are_refused_naming_the_field(routing, heartbeats):
    service = register_service(heartbeats, "web")
    with pytest.raises(grpc.RpcError) as refused:
        routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK, config=config(channel_id="C"),
            active_hours=hours({**OFFICE, "timezone": "Europe/Atlantis"})))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "active_hours.timezone" in refused.value.details()
    target = routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK, config=config(channel_id="C"),
        active_hours=hours(OFFICE))).target
    cleared = routing.UpdateNotificationTarget(routing_pb2.UpdateNotificationTargetRequest(
        target_id=target.target_id, clear_active_hours=True)).target
    assert not cleared.HasField("active_hours")
