"""RouteAlert against the real delivery service (on port 0, sending to a local
Slack stand-in) and a real PostgreSQL: fallback levels, unrouted alerts, the
alert's remembered route, and delivery being down."""
from __future__ import annotations

import dataclasses
import time

import grpc
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from medic.authz import KeyAuthorizer
from medic.server import create_server
from medic.v1 import common_pb2, delivery_pb2, events_pb2, heartbeat_pb2, heartbeat_pb2_grpc, routing_pb2
from services.heartbeat import app as heartbeat_app
from tests.support.auth import bearer
from tests.support.events import alert_event
from tests.support.events import target_config as config
from tests.support.ports import free_port
from tests.support.routing import register_service, start_delivery

TRIGGER = events_pb2.ALERT_EVENT_KIND_TRIGGER
REMINDER = events_pb2.ALERT_EVENT_KIND_REMINDER
RESOLVE = events_pb2.ALERT_EVENT_KIND_RESOLVE


def add_target(routing, service, priority=0, enabled=True, channel="C1", **kwargs):
    return routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK,
        config=config(channel_id=channel), priority=priority, enabled=enabled, **kwargs)).target


def route(routing, event, mode=common_pb2.NOTIFY_MODE_UNSPECIFIED):
    return routing.RouteAlert(routing_pb2.RouteAlertRequest(event=event, mode_override=mode))


def delivered(deliveries, alert_id):
    """(event kind, type, target id, destination, mode) per delivery of the alert, in plan order."""
    rows = deliveries.ListDeliveries(delivery_pb2.ListDeliveriesRequest(alert_id=alert_id)).deliveries
    rows = sorted(rows, key=lambda d: (d.delivery_id,))
    return [(events_pb2.AlertEventKind.Name(d.kind), delivery_pb2.TargetType.Name(d.type),
             d.target_id, d.destination, common_pb2.NotifyMode.Name(d.mode)) for d in rows]


def unrouted_count(kind="trigger") -> float:
    return REGISTRY.get_sample_value("medic_alerts_unrouted_total", {"kind": kind}) or 0.0


def test_alert_for_service_with_team_channel_but_no_targets_goes_to_that_channel(
        routing, heartbeats, deliveries, fake_slack):
    routing.CreateTeam(routing_pb2.CreateTeamRequest(name="payments", slack_channel_id="CPAY"))
    # The legacy team name resolves the team (the event has no team_id).
    service = register_service(heartbeats, "billing", team="Payments")

    plan = route(routing, alert_event(service, alert_id=10))

    assert plan.source == routing_pb2.ROUTE_SOURCE_TEAM_CHANNEL and not plan.unrouted
    assert [(t.type, t.target_id, t.config["channel_id"]) for t in plan.targets] == [
        (delivery_pb2.TARGET_TYPE_SLACK, 0, "CPAY")]
    assert delivered(deliveries, 10) == [
        ("ALERT_EVENT_KIND_TRIGGER", "TARGET_TYPE_SLACK", 0, "CPAY", "NOTIFY_MODE_ALL")]
    deadline = time.monotonic() + 10
    while "CPAY" not in fake_slack.posted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_slack.posted == ["CPAY"]


def test_team_is_found_by_id_before_name(routing, heartbeats, deliveries):
    by_id = routing.CreateTeam(routing_pb2.CreateTeamRequest(name="owners", slack_channel_id="CID")).team
    routing.CreateTeam(routing_pb2.CreateTeamRequest(name="legacy", slack_channel_id="CNAME"))
    service = register_service(heartbeats, "api", team="legacy")

    plan = route(routing, alert_event(service, alert_id=11, team_id=by_id.team_id))

    assert [t.config["channel_id"] for t in plan.targets] == ["CID"]


def test_alert_with_nothing_configured_is_unrouted_recorded_and_counted(
        routing, heartbeats, deliveries, db):
    service = register_service(heartbeats, "lonely", team="nobody")
    before = unrouted_count()

    plan = route(routing, alert_event(service, alert_id=12))

    assert plan.unrouted and plan.source == routing_pb2.ROUTE_SOURCE_UNROUTED
    assert not plan.enqueued and list(plan.targets) == []
    assert unrouted_count() == before + 1
    assert db.one("SELECT unrouted, targets FROM alert_routes WHERE alert_id = 12") == {
        "unrouted": True, "targets": []}
    assert delivered(deliveries, 12) == []


def unrouted_on_metrics_endpoint(http) -> float:
    """medic_alerts_unrouted_total{kind="trigger"} as scraped over HTTP."""
    response = http.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "medic_alerts_unrouted_total" and sample.labels == {"kind": "trigger"}:
                return sample.value
    return 0.0


@pytest.fixture
def heartbeat_with_hand_off(stack):
    """A heartbeat service of the stack whose hand-off to routing runs (the stack's
    own runs no monitor, hence no hand-off)."""
    settings = dataclasses.replace(stack.settings, monitor_enabled=True, handoff_poll_seconds=0.1)
    running = create_server(heartbeat_app.build(settings), port=0, workers=4,
                            authorizer=KeyAuthorizer(settings))
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
    channel.close()
    running.stop(1)


def test_a_real_alert_with_nothing_configured_is_stored_active_recorded_unrouted_and_scraped(
        stack, heartbeat_with_hand_off, http, db):
    # No target, no team, no default channel (the stack's), no webhook subscription.
    heartbeats, admin = heartbeat_with_hand_off, bearer(stack.admin_key)
    heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(
        heartbeat_name="lonely", service_name="lonely", alert_interval_seconds=60), metadata=admin)
    before = unrouted_on_metrics_endpoint(http)

    heartbeats.RecordHeartbeat(heartbeat_pb2.RecordHeartbeatRequest(
        heartbeat_name="lonely", status="FAILED"), metadata=admin)

    # Routing counts the event after recording its route: wait for the count.
    deadline = time.monotonic() + 15
    while (count := unrouted_on_metrics_endpoint(http)) == before:
        assert time.monotonic() < deadline, "the trigger was never counted unrouted"
        time.sleep(0.05)
    assert count == before + 1
    alerts = heartbeats.ListAlerts(heartbeat_pb2.ListAlertsRequest(active=True), metadata=admin).alerts
    assert [(a.heartbeat_name, a.active) for a in alerts] == [("lonely", True)]
    assert db.all("SELECT alert_id, unrouted, targets FROM alert_routes") == [
        {"alert_id": alerts[0].alert_id, "unrouted": True, "targets": []}]


def test_default_channel_is_used_when_the_service_has_no_target_and_no_team(
        routing_factory, delivery_server, heartbeats, deliveries):
    routing = routing_factory(delivery_server.port, default_channel="CDEFAULT")
    service = register_service(heartbeats, "api")

    plan = route(routing, alert_event(service, alert_id=13))

    assert plan.source == routing_pb2.ROUTE_SOURCE_DEFAULT_CHANNEL
    assert delivered(deliveries, 13) == [
        ("ALERT_EVENT_KIND_TRIGGER", "TARGET_TYPE_SLACK", 0, "CDEFAULT", "NOTIFY_MODE_ALL")]


def test_targets_in_priority_order_with_disabled_ones_skipped_in_the_services_mode(
        routing, heartbeats, deliveries):
    service = register_service(heartbeats, "api", mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)
    second = add_target(routing, service, priority=5, channel="CSECOND")
    first = add_target(routing, service, priority=1, channel="CFIRST")
    off = add_target(routing, service, priority=0, enabled=False, channel="COFF")

    plan = route(routing, alert_event(service, alert_id=14))

    assert plan.mode == common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
    assert [t.target_id for t in plan.targets] == [first.target_id, second.target_id]
    assert [t.target_id for t in plan.skipped] == [off.target_id]
    kinds = delivered(deliveries, 14)
    assert [(d[2], d[4]) for d in kinds] == [(first.target_id, "NOTIFY_MODE_UNTIL_SUCCESS"),
                                             (second.target_id, "NOTIFY_MODE_UNTIL_SUCCESS")]


def test_mode_override_wins_over_the_services_mode(routing, heartbeats):
    service = register_service(heartbeats, "api", mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)
    add_target(routing, service)
    plan = route(routing, alert_event(service, alert_id=15), mode=common_pb2.NOTIFY_MODE_ALL)
    assert plan.mode == common_pb2.NOTIFY_MODE_ALL


def test_reminder_and_resolve_go_to_the_targets_the_trigger_went_to(
        routing, heartbeats, deliveries):
    service = register_service(heartbeats, "api", mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)
    original = add_target(routing, service, channel="CORIGINAL")
    route(routing, alert_event(service, alert_id=16))

    # The targets change while the alert is open.
    routing.DeleteNotificationTarget(routing_pb2.DeleteNotificationTargetRequest(
        target_id=original.target_id))
    add_target(routing, service, channel="CNEW")

    reminder = route(routing, alert_event(service, REMINDER, alert_id=16, seq="-1"))
    resolve = route(routing, alert_event(service, RESOLVE, alert_id=16))

    for plan in (reminder, resolve):
        assert plan.source == routing_pb2.ROUTE_SOURCE_ALERT_ROUTE
        assert [(t.target_id, t.config["channel_id"]) for t in plan.targets] == [
            (original.target_id, "CORIGINAL")]
    assert reminder.mode == common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
    assert resolve.mode == common_pb2.NOTIFY_MODE_ALL
    assert [d[:4] for d in delivered(deliveries, 16)] == [
        ("ALERT_EVENT_KIND_TRIGGER", "TARGET_TYPE_SLACK", original.target_id, "CORIGINAL"),
        ("ALERT_EVENT_KIND_REMINDER", "TARGET_TYPE_SLACK", original.target_id, "CORIGINAL"),
        ("ALERT_EVENT_KIND_RESOLVE", "TARGET_TYPE_SLACK", original.target_id, "CORIGINAL")]


def test_repeating_an_event_enqueues_it_once(routing, heartbeats, deliveries):
    service = register_service(heartbeats, "api")
    add_target(routing, service)
    event = alert_event(service, alert_id=17)
    route(routing, event)
    route(routing, event)
    assert len(delivered(deliveries, 17)) == 1


def test_webhook_subscriptions_receive_the_event_whatever_the_mode(routing, heartbeats, deliveries):
    service = register_service(heartbeats, "api", mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)
    other = register_service(heartbeats, "other")
    add_target(routing, service)
    own = deliveries.CreateWebhook(delivery_pb2.CreateWebhookRequest(
        url="http://127.0.0.1:9/own", service_id=service.service_id)).webhook
    glob = deliveries.CreateWebhook(delivery_pb2.CreateWebhookRequest(
        url="http://127.0.0.1:9/global")).webhook
    deliveries.CreateWebhook(delivery_pb2.CreateWebhookRequest(
        url="http://127.0.0.1:9/other", service_id=other.service_id))

    plan = route(routing, alert_event(service, alert_id=18))

    assert [s.webhook_id for s in plan.subscriptions] == [own.webhook_id, glob.webhook_id]
    assert all(s.type == delivery_pb2.TARGET_TYPE_WEBHOOK for s in plan.subscriptions)


def test_invalid_events_are_refused(routing, heartbeats):
    service = register_service(heartbeats, "api")
    for event in (events_pb2.AlertEvent(kind=TRIGGER, alert_id=1),
                  alert_event(service, kind=events_pb2.ALERT_EVENT_KIND_UNSPECIFIED),
                  events_pb2.AlertEvent(event_id="e", kind=TRIGGER, alert_id=1)):
        with pytest.raises(grpc.RpcError) as info:
            route(routing, event)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_delivery_down_answers_unavailable_records_nothing_and_a_retry_succeeds(
        routing_factory, settings, heartbeats, fake_slack, db):
    port = free_port()
    routing = routing_factory(port)
    service = register_service(heartbeats, "api")
    add_target(routing, service, channel="CDOWN")
    event = alert_event(service, alert_id=19)

    with pytest.raises(grpc.RpcError) as info:
        route(routing, event)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert db.one("SELECT count(*) AS n FROM alert_routes")["n"] == 0

    delivery = start_delivery(settings, fake_slack.url, port=port)
    try:
        # The caller retries; the channel reconnects within its backoff.
        deadline = time.monotonic() + 15
        while True:
            try:
                plan = route(routing, event)
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline, "routing never reached the restarted delivery"
                time.sleep(0.2)
        assert [t.config["channel_id"] for t in plan.targets] == ["CDOWN"]
        assert db.one("SELECT event_id FROM alert_routes WHERE alert_id = 19") == {
            "event_id": event.event_id}
    finally:
        delivery.stop(grace=1)


def route_many(routing, *events):
    return routing.RouteAlerts(routing_pb2.RouteAlertsRequest(
        requests=[routing_pb2.RouteAlertRequest(event=e) for e in events])).results


def test_a_batch_routes_each_event_as_route_alert_would_in_order(routing, heartbeats, deliveries):
    routing.CreateTeam(routing_pb2.CreateTeamRequest(name="payments", slack_channel_id="CPAY"))
    with_targets = register_service(heartbeats, "api")
    add_target(routing, with_targets, channel="C2", priority=2)
    add_target(routing, with_targets, channel="C1", priority=1)
    by_team = register_service(heartbeats, "billing", team="PAYMENTS")
    nothing = register_service(heartbeats, "lonely")
    invalid = events_pb2.AlertEvent(event_id="x", kind=TRIGGER, alert_id=99)  # no service

    results = route_many(routing, alert_event(with_targets, alert_id=30), invalid,
                         alert_event(by_team, alert_id=31), alert_event(nothing, alert_id=32),
                         # TRIGGER and REMINDER of one alert in one call: the REMINDER
                         # follows the route the TRIGGER recorded.
                         alert_event(with_targets, REMINDER, alert_id=30, seq="-1"))

    assert [r.code for r in results] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0, 0, 0]
    assert "service_id" in results[1].message
    assert [t.config["channel_id"] for t in results[0].response.targets] == ["C1", "C2"]
    assert results[0].response.source == routing_pb2.ROUTE_SOURCE_SERVICE_TARGETS
    assert [t.config["channel_id"] for t in results[2].response.targets] == ["CPAY"]
    assert results[3].response.unrouted and not results[3].response.enqueued
    assert results[4].response.source == routing_pb2.ROUTE_SOURCE_ALERT_ROUTE
    assert [d[0] for d in delivered(deliveries, 30)] == [
        "ALERT_EVENT_KIND_TRIGGER", "ALERT_EVENT_KIND_TRIGGER",
        "ALERT_EVENT_KIND_REMINDER", "ALERT_EVENT_KIND_REMINDER"]
    assert len(delivered(deliveries, 31)) == 1 and delivered(deliveries, 32) == []


def test_a_batch_with_delivery_down_answers_unavailable_per_event_and_records_no_route(
        routing_factory, heartbeats, db):
    routing = routing_factory(free_port())
    service = register_service(heartbeats, "api")
    add_target(routing, service, channel="CDOWN")
    results = route_many(routing, alert_event(service, alert_id=40), alert_event(service, alert_id=41))
    assert [r.code for r in results] == [grpc.StatusCode.UNAVAILABLE.value[0]] * 2
    assert all("delivery service" in r.message for r in results)
    assert db.one("SELECT count(*) AS n FROM alert_routes")["n"] == 0


def test_an_empty_or_oversized_batch_is_refused(routing):
    for count in (0, 257):
        with pytest.raises(grpc.RpcError) as info:
            routing.RouteAlerts(routing_pb2.RouteAlertsRequest(
                requests=[routing_pb2.RouteAlertRequest()] * count))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_later_event_of_an_alert_never_overtakes_an_earlier_one_that_failed(routing, heartbeats, deliveries):
    service = register_service(heartbeats, "api")
    add_target(routing, service, channel="C1")
    bad_trigger = alert_event(service, alert_id=60)
    bad_trigger.kind = events_pb2.ALERT_EVENT_KIND_UNSPECIFIED  # refused, INVALID_ARGUMENT
    results = route_many(routing, bad_trigger, alert_event(service, RESOLVE, alert_id=60),
                         alert_event(service, alert_id=61))
    assert [r.code for r in results] == [grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                         grpc.StatusCode.UNAVAILABLE.value[0], 0]
    assert "earlier event of alert 60" in results[1].message
    assert delivered(deliveries, 60) == [] and len(delivered(deliveries, 61)) == 1
