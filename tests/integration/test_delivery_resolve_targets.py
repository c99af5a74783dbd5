"""A RESOLVE goes only to the targets that heard of the alert (REMINDER and
RESOLVE go to the targets the TRIGGER went to). Routing sends a
RESOLVE to every target of the alert's route; delivery skips a target for which
every earlier event of the alert was skipped. Real routing, real delivery, a
local Slack stand-in and PostgreSQL."""
from __future__ import annotations

import collections

import pytest
from google.protobuf import struct_pb2

from medic.v1 import common_pb2, delivery_pb2, events_pb2, routing_pb2
from tests.support.receivers import Reply, SlackReceiver, slack_error
from tests.support import delivery as delivery_support
from tests.support.delivery import enqueue, fast_settings, wait_until_final
from tests.support.events import alert_event, slack_target
from tests.support.routing import register_service

pytestmark = pytest.mark.timeout(60)

TRIGGER = events_pb2.ALERT_EVENT_KIND_TRIGGER
REMINDER = events_pb2.ALERT_EVENT_KIND_REMINDER
RESOLVE = events_pb2.ALERT_EVENT_KIND_RESOLVE
SLACK_OK = Reply(200, {"ok": True, "channel": "C0", "ts": "1700000000.000100"})


def two_slack_targets(routing, heartbeats, name: str):
    """A service under until-success with targets #FIRST then #SECOND."""
    service = register_service(heartbeats, name, mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)
    for priority, channel in enumerate(("FIRST", "SECOND")):
        config = struct_pb2.Struct()
        config.update({"channel_id": channel})
        routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK, config=config,
            priority=priority, enabled=True))
    return service


def route(routing, service, kind, alert_id, seq=""):
    routing.RouteAlert(routing_pb2.RouteAlertRequest(
        event=alert_event(service, kind, alert_id=alert_id, seq=seq)))


def trigger_then_resolve(routing, db, deliveries, service, alert_id):
    """Routes the alert's TRIGGER and RESOLVE; its deliveries once final."""
    route(routing, service, TRIGGER, alert_id=alert_id)
    route(routing, service, RESOLVE, alert_id=alert_id)
    return final_deliveries(db, deliveries, alert_id)


def final_deliveries(db, deliveries, alert_id):
    """{(kind, channel): (status, last_error)} once every delivery of the alert is final."""
    listed = deliveries.ListDeliveries(delivery_pb2.ListDeliveriesRequest(alert_id=alert_id)).deliveries
    rows = wait_until_final(db, [d.delivery_id for d in listed])
    return {(events_pb2.AlertEventKind.Name(d.kind).removeprefix("ALERT_EVENT_KIND_").lower(),
             d.destination): (rows[d.delivery_id]["status"], rows[d.delivery_id]["last_error"])
            for d in listed}


def received(fake_slack):
    """(headline kind, channel) of each chat.postMessage, counted."""
    kinds = {"is down": "trigger", "is still down": "reminder", "recovered": "resolve"}
    out = collections.Counter()
    for request in fake_slack.requests:
        body = request.json()
        kind = next(k for text, k in kinds.items() if text in body["text"])
        out[(kind, body["channel"])] += 1
    return out


def test_a_resolve_reaches_only_the_target_the_trigger_went_to(routing, heartbeats, deliveries, db,
                                                                 fake_slack):
    service = two_slack_targets(routing, heartbeats, "api")
    # #FIRST answers slowly: the RESOLVE is routed while the TRIGGER is still in
    # flight, so its delivery to #SECOND must wait for the TRIGGER's to finish.
    fake_slack.script(Reply(200, SLACK_OK.body, delay=0.5))

    outcome = trigger_then_resolve(routing, db, deliveries, service, 31)

    assert {key: status for key, (status, _) in outcome.items()} == {
        ("trigger", "FIRST"): "success", ("trigger", "SECOND"): "skipped",
        ("resolve", "FIRST"): "success", ("resolve", "SECOND"): "skipped"}
    assert "none of the alert's earlier events" in outcome[("resolve", "SECOND")][1]
    assert received(fake_slack) == {("trigger", "FIRST"): 1, ("resolve", "FIRST"): 1}


def test_a_resolve_reaches_every_target_that_was_tried(routing, heartbeats, deliveries, db, fake_slack):
    service = two_slack_targets(routing, heartbeats, "api")
    fake_slack.script(slack_error("channel_not_found"))  # #FIRST fails for good, #SECOND takes over

    outcome = trigger_then_resolve(routing, db, deliveries, service, 32)

    assert {key: status for key, (status, _) in outcome.items()} == {
        ("trigger", "FIRST"): "failed", ("trigger", "SECOND"): "success",
        ("resolve", "FIRST"): "success", ("resolve", "SECOND"): "success"}
    assert received(fake_slack) == {("trigger", "FIRST"): 1, ("trigger", "SECOND"): 1,
                                    ("resolve", "FIRST"): 1, ("resolve", "SECOND"): 1}


def test_a_target_first_reached_by_a_reminder_gets_the_resolve(routing, heartbeats, deliveries, db,
                                                                fake_slack):
    service = two_slack_targets(routing, heartbeats, "api")
    route(routing, service, TRIGGER, alert_id=33)
    final_deliveries(db, deliveries, 33)  # #FIRST got it, #SECOND skipped
    fake_slack.script(slack_error("channel_not_found"))  # the reminder falls through to #SECOND
    route(routing, service, REMINDER, alert_id=33, seq="-1")
    route(routing, service, RESOLVE, alert_id=33)

    outcome = final_deliveries(db, deliveries, 33)

    assert outcome[("reminder", "SECOND")][0] == "success"
    assert outcome[("resolve", "FIRST")][0] == "success"
    assert outcome[("resolve", "SECOND")][0] == "success"
    assert received(fake_slack)[("resolve", "SECOND")] == 1


def test_a_resolve_without_earlier_deliveries_is_sent_and_a_skipped_one_can_be_sent_by_hand(db):
    """Delivery alone: a RESOLVE with no earlier event to its target goes out as
    before; one skipped because its target never heard of the alert is sent when
    retried by hand (the operator asked for it)."""
    with SlackReceiver() as slack:
        settings = fast_settings(db.dsn, slack_api_url=slack.url, delivery_http_timeout_seconds=5.0)
        with delivery_support.delivery_server(settings, db) as stub:
            alone = enqueue(stub, alert_event(41, "resolve"), [slack_target("ALONE", 5)]).delivery_ids
            trigger = enqueue(stub, alert_event(42, "trigger"),
                              [slack_target("FIRST", 1), slack_target("SECOND", 2)],
                              mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS).delivery_ids
            wait_until_final(db, list(alone) + list(trigger))
            resolve = enqueue(stub, alert_event(42, "resolve"),
                              [slack_target("FIRST", 1), slack_target("SECOND", 2)]).delivery_ids
            skipped = wait_until_final(db, resolve)[resolve[1]]
            stub.RetryDelivery(delivery_pb2.RetryDeliveryRequest(delivery_id=resolve[1]))
            retried = wait_until_final(db, [resolve[1]])[resolve[1]]

        channels = [(r.json()["channel"], "recovered" in r.json()["text"]) for r in slack.requests]
    assert wait_until_final(db, alone)[alone[0]]["status"] == "success"
    assert (skipped["status"], skipped["attempts"]) == ("skipped", 0)
    assert (retried["status"], retried["attempts"]) == ("success", 1)
    assert sorted(channels) == [("ALONE", True), ("FIRST", False), ("FIRST", True), ("SECOND", True)]


def test_a_chained_resolve_skipped_for_a_target_passes_its_turn_to_the_next(db):
    """Under an explicit until-success RESOLVE the chain goes on past a target that
    never heard of the alert, as after a failure (else the rest would wait for ever)."""
    with SlackReceiver() as slack:
        settings = fast_settings(db.dsn, slack_api_url=slack.url, delivery_http_timeout_seconds=5.0)
        targets = [slack_target("FIRST", 1), slack_target("SECOND", 2), slack_target("THIRD", 3)]
        until_success = common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
        with delivery_support.delivery_server(settings, db) as stub:
            trigger = enqueue(stub, alert_event(43, "trigger"), targets,
                              mode=until_success).delivery_ids
            wait_until_final(db, trigger)  # #FIRST got it; #SECOND and #THIRD skipped
            slack.script(slack_error("channel_not_found"))  # the RESOLVE to #FIRST fails for good
            resolve = enqueue(stub, alert_event(43, "resolve"), targets,
                              mode=until_success).delivery_ids
            rows = wait_until_final(db, resolve)
        channels = [r.json()["channel"] for r in slack.requests]
    assert [rows[i]["status"] for i in resolve] == ["failed", "skipped", "skipped"]
    assert channels == ["FIRST", "FIRST"]


def test_a_resolve_skipped_after_its_chain_succeeded_is_sent_when_retried_by_hand(db):
    """An until-success RESOLVE skips the targets after the one it reached (no
    last_error: nothing went wrong). Retried by hand, such a RESOLVE to a target
    that got none of the alert's earlier events is sent, not skipped again at the
    claim: the operator asked for it."""
    with SlackReceiver() as slack:
        settings = fast_settings(db.dsn, slack_api_url=slack.url, delivery_http_timeout_seconds=5.0)
        targets = [slack_target("FIRST", 1), slack_target("SECOND", 2)]
        until_success = common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
        with delivery_support.delivery_server(settings, db) as stub:
            trigger = enqueue(stub, alert_event(44, "trigger"), targets,
                              mode=until_success).delivery_ids
            wait_until_final(db, trigger)  # #FIRST got it; #SECOND skipped
            resolve = enqueue(stub, alert_event(44, "resolve"), targets,
                              mode=until_success).delivery_ids
            skipped = wait_until_final(db, resolve)[resolve[1]]
            answer = stub.RetryDelivery(delivery_pb2.RetryDeliveryRequest(delivery_id=resolve[1]))
            retried = wait_until_final(db, [resolve[1]])[resolve[1]]
        sent = [(r.json()["channel"], "recovered" in r.json()["text"]) for r in slack.requests]
    assert (skipped["status"], skipped["attempts"], skipped["last_error"]) == ("skipped", 0, None)
    assert answer.delivery.status == delivery_pb2.DELIVERY_STATUS_PENDING
    assert (retried["status"], retried["attempts"]) == ("success", 1)
    assert sorted(sent) == [("FIRST", False), ("FIRST", True), ("SECOND", True)]
