"""Planning an event's outbox rows: order, chains, and each integration's keys."""
from __future__ import annotations

import pytest

from medic.errors import InvalidArgument
from medic.v1 import delivery_pb2
from services.delivery.integrations import INTEGRATIONS
from services.delivery.model import TargetPlan
from services.delivery.planning import plan_deliveries

EVENT = {"event_id": "alert-9-trigger", "kind": "trigger", "alert_id": 9, "service": {"service_id": 1}}


def test_every_target_type_of_the_contract_has_an_integration():
    contract = {name.removeprefix("TARGET_TYPE_").lower()
                for name, value in delivery_pb2.TargetType.items() if value}
    assert set(INTEGRATIONS) == contract


def test_until_success_chains_the_targets_but_never_the_subscriptions():
    rows = plan_deliveries(EVENT, "until_success", [
        TargetPlan("slack", {"channel_id": "C1"}, target_id=1),
        TargetPlan("webhook", {"url": "https://a.example/x"}, target_id=2),
        TargetPlan("webhook", {}, webhook_id=5, is_subscription=True)])
    assert [(r.position, r.in_chain, r.due_now) for r in rows] == [
        (0, True, True), (1, True, False), (2, False, True)]
    assert [r.idempotency_key for r in rows] == [f"alert-9-trigger.{n}" for n in range(3)]


def test_all_mode_makes_every_row_due_at_once():
    rows = plan_deliveries(EVENT, "all", [TargetPlan("slack", {"channel_id": "C1"}),
                                          TargetPlan("slack", {"channel_id": "C2"})])
    assert [(r.in_chain, r.due_now) for r in rows] == [(False, True), (False, True)]


def test_each_integration_names_its_destination():
    rows = plan_deliveries(EVENT, "all", [
        TargetPlan("slack", {"channel_id": "C1"}),
        TargetPlan("pagerduty", {"routing_key": "rk"}),
        TargetPlan("webhook", {"url": "https://user@Hooks.Example:8443/a?b=c"}),
        TargetPlan("webhook", {}, webhook_id=5, is_subscription=True)])
    assert [r.destination_key for r in rows] == [
        "slack:C1", "pagerduty", "webhook:https://hooks.example:8443", "webhook:#5"]


def test_every_pagerduty_event_of_an_alert_carries_the_alerts_dedup_key():
    for kind in ("trigger", "resolve"):
        event = {**EVENT, "event_id": f"alert-9-{kind}", "kind": kind}
        [row] = plan_deliveries(event, "all", [TargetPlan("pagerduty", {"routing_key": "rk"})])
        assert row.idempotency_key == "medic-alert-9"


@pytest.mark.parametrize("target, field", [
    (TargetPlan("slack", {}), "channel_id"), (TargetPlan("pagerduty", {"routing_key": ""}), "routing_key"),
    (TargetPlan("webhook", {}), "url")])
def test_a_target_without_its_destination_is_refused_by_position(target, field):
    with pytest.raises(InvalidArgument) as info:
        plan_deliveries(EVENT, "all", [TargetPlan("slack", {"channel_id": "C1"}), target])
    assert info.value.message == f"target 1: config.{field} is required"


def test_every_integration_is_built_from_the_settings():
    from medic.config import Settings
    from services.delivery.integrations import senders

    built = senders(Settings(slack_token="xoxb-t", delivery_http_timeout_seconds=4.0))
    assert {name: type(sender).__name__ for name, sender in built.items()} == {
        "pagerduty": "PagerDutySender", "slack": "SlackSender", "webhook": "WebhookSender"}
    assert all(sender.timeout == 4.0 for sender in built.values())


def test_a_window_announcement_is_never_planned_for_pagerduty():
    announcement = {**EVENT, "kind": "window_started", "alert_id": None, "event_id": "window-1-0-started-9"}
    rows = plan_deliveries(announcement, "all", [TargetPlan("slack", {"channel_id": "C1"}, target_id=1)])
    assert [r.idempotency_key for r in rows] == ["window-1-0-started-9.0"]
    with pytest.raises(InvalidArgument, match="pagerduty"):
        plan_deliveries(announcement, "all", [TargetPlan("pagerduty", {"routing_key": "R"}, target_id=2)])
