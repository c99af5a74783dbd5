"""Missed heartbeats to delivered notifications: the whole system as processes,
local receivers standing in for Slack, PagerDuty and a webhook."""
from __future__ import annotations

import collections
import time

import pytest

from tests.support.system import System
from tests.support.receivers import PagerDutyReceiver, Reply, SlackReceiver, WebhookReceiver
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def receivers():
    with SlackReceiver() as slack, PagerDutyReceiver() as pagerduty, WebhookReceiver() as webhook, \
            WebhookReceiver() as second_webhook:
        yield slack, pagerduty, webhook, second_webhook


def system_env(slack, pagerduty, **extra):
    return {"MEDIC_SLACK_API_URL": slack.url, "MEDIC_SLACK_TOKEN": "xoxb-e2e",
            "MEDIC_PAGERDUTY_EVENTS_URL": pagerduty.events_url, "MEDIC_WEBHOOK_ALLOW_PRIVATE": "true",
            "MEDIC_MONITOR_TICK_SECONDS": "0.2", "MEDIC_HANDOFF_POLL_SECONDS": "0.1",
            "MEDIC_DELIVERY_RETRY_DELAYS": "0.2,0.5", **extra}


@pytest.fixture
def system_factory(database_url, tmp_path):
    started = []

    def make(extra_env) -> System:
        system = System(database_url, tmp_path / "data", extra_env)
        started.append(system)
        return system

    yield make
    for system in started:
        system.stop_all()


def test_silent_service_triggers_slack_pagerduty_and_webhook_then_resolves(system_factory, receivers):
    slack, pagerduty, webhook, _ = receivers
    system = system_factory(system_env(slack, pagerduty)).start_all()
    team = system.api("POST", "/v2/teams", json={"name": "payments", "slack_channel_id": "CPAYMENTS"})
    service = system.register("billing", interval_seconds=2, team_id=team["team_id"], priority="p1")
    system.api("POST", "/v2/notification-targets", json={
        "service_id": service["service_id"], "type": "slack", "config": {"channel_id": "CPAYMENTS"}})
    system.api("POST", "/v2/notification-targets", json={
        "service_id": service["service_id"], "type": "pagerduty", "config": {"routing_key": "R0UT1NG"},
        "priority": 1})
    hook = system.api("POST", "/v2/webhooks", json={"url": webhook.url + "/medic",
                                                   "service_id": service["service_id"]})
    assert hook["secret"].startswith("whsec_")
    system.beat("billing")
    deadline_at = system.api("GET", "/service/billing")[0]["deadline_at"]

    posts = slack.wait_for(1, timeout=30)
    events = pagerduty.wait_for(1, timeout=30)
    hooks = webhook.wait_for(1, timeout=30)
    import datetime as dt
    deadline = dt.datetime.fromisoformat(deadline_at.replace("Z", "+00:00")).timestamp()
    arrived = time.time() - (time.monotonic() - min(posts[0].received_at, events[0].received_at,
                                                   hooks[0].received_at))
    print(f"\nfirst notification arrived {arrived - deadline:.2f} s after the deadline")

    assert posts[0].json()["channel"] == "CPAYMENTS"
    assert posts[0].header("authorization") == "Bearer xoxb-e2e"
    trigger = events[0].json()
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "R0UT1NG"
    assert trigger["payload"]["severity"] == "critical"
    assert hooks[0].json()["type"] == "alert.triggered" and hooks[0].header("webhook-signature")
    alerts = system.api("GET", "/alerts?active=1")
    assert [(a["heartbeat_name"], a["reason"]) for a in alerts] == [("billing", "missed_heartbeats")]

    system.beat("billing")  # recovery: RESOLVE to the same places
    posts = slack.wait_for(2, timeout=30)
    events = pagerduty.wait_for(2, timeout=30)
    hooks = webhook.wait_for(2, timeout=30)
    assert posts[1].json()["channel"] == "CPAYMENTS"
    resolve = events[1].json()
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
    assert hooks[1].json()["type"] == "alert.resolved"
    assert system.api("GET", "/alerts?active=1") == []
    # A receiver has the request before delivery records the answer: wait for the records.
    def recorded():
        rows = system.api("GET", f"/v2/deliveries?alert_id={alerts[0]['alert_id']}")
        return rows if len(rows) == 6 and all(d["status"] != "pending" for d in rows) else None

    deliveries = wait_for(recorded, 10, "six recorded deliveries")
    assert {d["status"] for d in deliveries} == {"success"}


def test_notify_until_success_falls_through_to_the_second_target_only_when_needed(system_factory, receivers):
    slack, pagerduty, webhook, second = receivers
    system = system_factory(system_env(slack, pagerduty)).start_all()
    webhook.always(Reply(400, {"error": "nope"}))  # fails for good at once
    for name, first in (("flaky", webhook), ("steady", second)):
        service = system.register(name, interval_seconds=2, notify_mode="until_success")
        system.api("POST", "/v2/notification-targets", json={
            "service_id": service["service_id"], "type": "webhook", "priority": 0,
            "config": {"url": f"{first.url}/{name}"}})
        system.api("POST", "/v2/notification-targets", json={
            "service_id": service["service_id"], "type": "slack", "priority": 1,
            "config": {"channel_id": f"C-{name}"}})
        system.beat(name)
    wait_for(lambda: len(second.requests) >= 1 and any(
        r.json()["channel"] == "C-flaky" for r in slack.requests), 40, "both alerts delivered")
    time.sleep(1.0)  # room for a wrong extra delivery to show up
    assert [r.path for r in webhook.requests] == ["/flaky"]
    assert [r.json()["channel"] for r in slack.requests] == ["C-flaky"]
    assert [r.path for r in second.requests] == ["/steady"]


def test_muted_service_opens_an_alert_silently_then_triggers_and_reminds_after_the_mute_expires(
        system_factory, receivers):
    slack, pagerduty, _, _ = receivers
    system = system_factory(system_env(slack, pagerduty, MEDIC_MUTE_TTL_SECONDS="4",
                                       MEDIC_REMINDER_MIN_SECONDS="1")).start_all()
    service = system.register("batch", interval_seconds=1)
    system.api("POST", "/v2/notification-targets", json={
        "service_id": service["service_id"], "type": "slack", "config": {"channel_id": "CBATCH"}})
    system.api("POST", "/service/batch", json={"muted": 1})
    wait_for(lambda: system.api("GET", "/alerts?active=1"), 20, "the alert to open")
    time.sleep(1.5)
    assert slack.requests == []  # muted: nothing sent
    posts = slack.wait_for(2, timeout=30)  # the mute lapses; reminders every second
    assert all(p.json()["channel"] == "CBATCH" for p in posts)
    # Nobody was told yet: the TRIGGER the mute held back comes first, then reminders.
    assert "is down" in posts[0].json()["text"] and "still down" in posts[1].json()["text"]
    history = system.api("GET", f"/v2/services/{service['service_id']}/transitions")
    assert "mute_expired" in [t["reason"] for t in history]


def test_pagerduty_gets_the_dedup_key_alerts_shows_for_trigger_reminders_and_resolve(system_factory, receivers):
    slack, pagerduty, _, _ = receivers
    system = system_factory(system_env(slack, pagerduty, MEDIC_REMINDER_MIN_SECONDS="1")).start_all()
    service = system.register("ledger", interval_seconds=1)
    system.api("POST", "/v2/notification-targets", json={
        "service_id": service["service_id"], "type": "pagerduty", "config": {"routing_key": "R0UT1NG"}})
    system.beat("ledger")
    events = pagerduty.wait_for(2, timeout=30)  # the trigger and a reminder
    [alert] = system.api("GET", "/alerts?active=1")
    system.beat("ledger")  # recovery
    wait_for(lambda: pagerduty.requests[-1].json()["event_action"] == "resolve", 30, "the resolve")
    events = list(pagerduty.requests)
    actions = [e.json()["event_action"] for e in events]
    assert actions[0] == "trigger" and actions[-1] == "resolve", actions
    assert {e.json()["dedup_key"] for e in events} == {alert["external_reference_id"]}


def test_two_monitors_and_two_deliveries_send_each_trigger_exactly_once(system_factory, receivers):
    slack, pagerduty, webhook, _ = receivers
    system = system_factory(system_env(slack, pagerduty, MEDIC_MONITOR_BATCH="13"))
    for name in ("auth", "delivery", "routing", "heartbeat", "gateway"):
        system.start(name)
    system.start("monitor")
    system.start("delivery", instance="-2")
    system.api("POST", "/v2/webhooks", json={"url": webhook.url + "/all"})  # global subscription
    for n in range(100):
        service = system.register(f"svc-{n:03d}", interval_seconds=3)
        system.api("POST", "/v2/notification-targets", json={
            "service_id": service["service_id"], "type": "pagerduty", "config": {"routing_key": f"K{n}"}})
    hooks = webhook.wait_for(100, timeout=90)
    events = pagerduty.wait_for(100, timeout=60)
    time.sleep(2.0)  # any duplicate would arrive now
    assert len(webhook.requests) == 100 and len(pagerduty.requests) == 100
    assert len({h.header("webhook-id") for h in hooks}) == 100
    assert len({e.json()["routing_key"] for e in events}) == 100
    assert len(system.api("GET", "/alerts?active=1")) == 100


def test_triggers_made_while_routing_is_down_all_arrive_after_it_returns(system_factory, receivers):
    slack, pagerduty, webhook, _ = receivers
    system = system_factory(system_env(slack, pagerduty)).start_all()
    system.api("POST", "/v2/webhooks", json={"url": webhook.url + "/all"})
    for n in range(5):
        system.register(f"job-{n}", interval_seconds=1)
    system.stop("routing")
    wait_for(lambda: len(system.api("GET", "/alerts?active=1")) == 5, 20, "five alerts")
    time.sleep(30)
    assert webhook.requests == []
    system.start("routing")
    # Within seconds of routing's return (the hand-off's and the channels'
    # reconnect pauses are capped at 5 s), and before the first REMINDER is due.
    hooks = webhook.wait_for(5, timeout=25)
    assert sorted(h.json()["service"]["heartbeat_name"] for h in hooks) == [f"job-{n}" for n in range(5)]
    assert collections.Counter(h.json()["type"] for h in hooks) == {"alert.triggered": 5}
