"""Quiet hours, the whole system as processes: maintenance windows, acknowledgements
and mutes, with local receivers standing in for Slack and PagerDuty."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from tests.e2e.test_alerting import receivers, system_env, system_factory, wait_for  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def wall(received_at: float) -> float:
    """A receiver's monotonic arrival time as a Unix time."""
    return time.time() - (time.monotonic() - received_at)


def channels(slack) -> list[str]:
    return [r.json()["channel"] for r in slack.requests]


def with_two_monitors(database_url, tmp_path, **env):
    """Every process, and two monitors over the one database."""
    from tests.support.system import System

    system = System(database_url, tmp_path / "data", {
        "MEDIC_WEBHOOK_ALLOW_PRIVATE": "true", "MEDIC_MONITOR_ENABLED": "false",
        "MEDIC_MONITOR_TICK_SECONDS": "0.2", "MEDIC_HANDOFF_POLL_SECONDS": "0.1", **env})
    try:
        for name in ("auth", "delivery", "routing", "heartbeat", "gateway"):
            system.start(name)
        system.start("monitor", MEDIC_MONITOR_ENABLED="true")
        system.start("monitor", "2", MEDIC_MONITOR_ENABLED="true")
    except BaseException:
        system.stop_all()
        raise
    return system


def with_slack(system, name: str, **fields) -> dict:
    service = system.register(name, interval_seconds=2, **fields)
    system.api("POST", "/v2/notification-targets", json={
        "service_id": service["service_id"], "type": "slack", "config": {"channel_id": f"C-{name}"}})
    return service


def test_maintenance_window_keeps_quiet_then_alerts_at_once_for_what_is_still_down(system_factory, receivers):
    slack, pagerduty, _, _ = receivers
    system = system_factory(system_env(slack, pagerduty)).start_all()
    silent = with_slack(system, "batch-silent")
    recovers = with_slack(system, "batch-recovers")
    with_slack(system, "batch-healthy")
    outside = with_slack(system, "web-outside")  # not matched by the glob: alerts as usual
    for name in ("batch-silent", "batch-recovers", "batch-healthy", "web-outside"):
        system.beat(name)
    ends_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=8)
    window = system.api("POST", "/v2/maintenance-windows", json={
        "scope": "glob", "name_glob": "batch-*", "reason": "database upgrade",
        "starts_at": iso(ends_at - dt.timedelta(seconds=60)), "ends_at": iso(ends_at)})
    assert window["open_now"] and window["created_by"]
    assert [w["window_id"] for w in system.api("GET", "/v2/maintenance-windows?active_only=true")] == [
        window["window_id"]]

    stop = threading.Event()
    healthy = {"batch-healthy"}

    def keep_beating():  # healthy services stay healthy across the window's end
        while not stop.wait(0.5):
            for name in list(healthy):
                system.beat(name)

    beater = threading.Thread(target=keep_beating, daemon=True)
    beater.start()
    try:
        # Everything goes silent; web-outside alerts, the batch services do not.
        wait_for(lambda: "C-web-outside" in channels(slack), 15, "web-outside's trigger")
        wait_for(lambda: {a["heartbeat_name"] for a in system.api("GET", "/alerts?active=1")} >= {
            "batch-silent", "batch-recovers"}, 10, "the batch alerts recorded")
        assert "C-batch-silent" not in channels(slack) and "C-batch-recovers" not in channels(slack)
        transitions = system.api("GET", f"/v2/services/{silent['service_id']}/transitions")
        went_down = [t for t in transitions if t["reason"] == "missed_heartbeats"]
        assert went_down and went_down[0]["suppressed_by"] == window["window_id"]
        system.beat("batch-recovers")  # recovers inside the window, and stays up
        healthy.add("batch-recovers")
        skipped = system.api("GET", f"/v2/alerts/{went_down[0]['alert_id']}/skips")
        assert [(s["kind"], s["reason"], s["window_id"]) for s in skipped] == [
            ("trigger", "window", window["window_id"])]

        # The window ends: batch-silent, still down, alerts within a second.
        posts = wait_for(lambda: [r for r in slack.requests if r.json()["channel"] == "C-batch-silent"],
                         15, "batch-silent's trigger after the window")
        late = wall(posts[0].received_at) - ends_at.timestamp()
        print(f"\ntrigger arrived {late:.2f} s after the window ended")
        assert -0.1 < late <= 1.0
        time.sleep(2.5)  # anything else would have come by now
    finally:
        stop.set()
        beater.join()
    assert sorted(set(channels(slack))) == ["C-batch-silent", "C-web-outside"]
    assert [p.json()["channel"] for p in slack.requests].count("C-batch-silent") == 1
    assert not system.api("GET", "/v2/maintenance-windows?active_only=true")
    assert outside["service_id"] and recovers["service_id"]


def test_acknowledging_stops_reminders_and_acknowledges_pagerduty_and_the_resolve_still_goes_out(
        system_factory, receivers):
    slack, pagerduty, _, _ = receivers
    system = system_factory(system_env(slack, pagerduty, MEDIC_REMINDER_MIN_SECONDS="1")).start_all()
    service = with_slack(system, "ledger")
    system.api("POST", "/v2/notification-targets", json={
        "service_id": service["service_id"], "type": "pagerduty", "config": {"routing_key": "R0UT1NG"},
        "priority": 1})
    system.beat("ledger")
    events = pagerduty.wait_for(2, timeout=30)  # the TRIGGER and a first REMINDER
    assert [e.json()["event_action"] for e in events] == ["trigger", "trigger"]
    [alert] = system.api("GET", "/alerts?active=1")
    acked = system.api("POST", f"/v2/alerts/{alert['alert_id']}/ack")
    assert acked["acknowledged_at"] and "key:" in acked["acknowledged_by"]
    assert system.api("POST", f"/v2/alerts/{alert['alert_id']}/ack")["acknowledged_at"] == acked["acknowledged_at"]

    ack = wait_for(lambda: [e for e in pagerduty.requests if e.json()["event_action"] == "acknowledge"], 10,
                   "PagerDuty's acknowledge")
    assert ack[0].json()["dedup_key"] == events[0].json()["dedup_key"]
    before = len(pagerduty.requests), len(slack.requests)
    time.sleep(5)  # two and a half intervals: reminders would have come
    assert (len(pagerduty.requests), len(slack.requests)) == before
    skipped = system.api("GET", f"/v2/alerts/{alert['alert_id']}/skips")
    assert skipped and {(s["kind"], s["reason"]) for s in skipped} == {("reminder", "acknowledged")}

    system.beat("ledger")  # recovery: the resolve still goes to both
    wait_for(lambda: pagerduty.requests[-1].json()["event_action"] == "resolve", 10, "PagerDuty's resolve")
    wait_for(lambda: "recovered" in slack.requests[-1].json()["text"], 10, "Slack's resolve")
    assert sum(e.json()["event_action"] == "acknowledge" for e in pagerduty.requests) == 1


def test_a_mute_without_until_ends_when_the_service_recovers(system_factory, receivers):
    slack, pagerduty, _, _ = receivers
    system = system_factory(system_env(slack, pagerduty)).start_all()
    service = with_slack(system, "etl")
    muted = system.api("POST", f"/v2/services/{service['service_id']}/mute", json={"reason": "backfill"})
    assert (muted["muted"], muted["mute_reason"], muted.get("muted_until")) == (True, "backfill", None)
    system.beat("etl")
    wait_for(lambda: system.api("GET", "/alerts?active=1"), 15, "the muted service's alert")
    time.sleep(1)
    assert slack.requests == []  # muted: no TRIGGER

    system.beat("etl")  # recovers: the mute ends with it
    shown = system.api("GET", "/service/etl")[0]
    assert not shown["muted"]
    reasons = [t["reason"] for t in system.api("GET", f"/v2/services/{service['service_id']}/transitions")]
    assert reasons[:2] == ["mute_ended", "recovered"]

    # Silent again: this time the alert is notified.
    posts = slack.wait_for(1, timeout=15)
    assert posts[0].json()["channel"] == "C-etl"


def test_two_monitors_over_200_services_with_windows_opening_and_closing_send_each_notification_once(
        database_url, tmp_path):
    from tests.support.receivers import WebhookReceiver

    with WebhookReceiver() as hook:
        system = with_two_monitors(database_url, tmp_path)
        try:
            # A key of the test's own: the bootstrap key's 300 management calls a minute are too few here.
            key = system.api("POST", "/v2/api-keys", json={"name": "replicas", "scopes": ["admin"],
                                                            "rate_limits": {"management_per_minute": 100000}})
            system.http.headers["Authorization"] = f"Bearer {key['key']}"
            system.api("POST", "/v2/webhooks", json={"url": hook.url + "/all"})
            groups = {g: [f"svc-{g}-{n:03d}" for n in range(50)] for g in "abcd"}
            # a: no window; b: open now; c: opens 5 s after its services' first beat; d: open, its
            # services recover inside it. Each window exists before its group's first beat, and ends
            # (set once the group has beaten, however long that took) a few seconds after the group's
            # last deadline (its last beat + 10 s), so every deadline falls inside its window.
            starts, ends = {}, {}
            for group, names in groups.items():
                now = dt.datetime.now(dt.timezone.utc)
                spec = {}
                if group != "a":
                    starts[group] = now + dt.timedelta(seconds=5 if group == "c" else -1)
                    spec = {"scope": "glob", "name_glob": f"svc-{group}-*", "reason": f"group {group}",
                            "starts_at": iso(starts[group]), "ends_at": iso(now + dt.timedelta(minutes=10))}
                    window = system.api("POST", "/v2/maintenance-windows", json=spec)
                for name in names:
                    system.register(name, interval_seconds=10)
                    system.beat(name)
                if group != "a":
                    margin = 12 if group == "b" else 15
                    ends[group] = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=margin)
                    system.api("PUT", f"/v2/maintenance-windows/{window['window_id']}",
                               json={**spec, "ends_at": iso(ends[group])})
            wait_for(lambda: len([a for a in system.api("GET", "/alerts?active=1")
                                  if a["heartbeat_name"].startswith("svc-d-")]) == 50, 30, "d's alerts recorded")
            for name in groups["d"]:
                system.beat(name)  # d recovers inside its window ...
            stop = threading.Event()

            def keep_d_up():  # ... and stays up past its end
                while not stop.wait(2):
                    for name in groups["d"]:
                        system.beat(name)

            beater = threading.Thread(target=keep_d_up, daemon=True)
            beater.start()
            try:
                hooks = hook.wait_for(150, timeout=60)
                time.sleep(3)  # room for a duplicate or a stray notification to show up
            finally:
                stop.set()
                beater.join()
        finally:
            system.stop_all()

    received = [(h.json()["type"], h.json()["service"]["heartbeat_name"], h) for h in hook.requests]
    assert len(received) == 150 and len({h.header("webhook-id") for _, _, h in received}) == 150
    assert {kind for kind, _, _ in received} == {"alert.triggered"}
    by_group = {g: sorted(name for _, name, _ in received if name.startswith(f"svc-{g}-")) for g in "abcd"}
    assert by_group == {"a": groups["a"], "b": groups["b"], "c": groups["c"], "d": []}
    for group in "bc":  # held back until their window ended, then sent at once
        arrivals = [wall(h.received_at) for _, name, h in received if name.startswith(f"svc-{group}-")]
        assert min(arrivals) >= ends[group].timestamp() - 0.05
        assert max(arrivals) - ends[group].timestamp() < 5


def test_an_announcing_window_tells_each_service_its_start_and_end_once_with_two_monitors(
        database_url, tmp_path):
    from tests.support.receivers import PagerDutyReceiver, WebhookReceiver

    with WebhookReceiver() as hook, PagerDutyReceiver() as pagerduty:
        system = with_two_monitors(database_url, tmp_path, MEDIC_PAGERDUTY_EVENTS_URL=pagerduty.events_url)
        try:
            announced = [f"maint-{n:02d}" for n in range(10)]
            quiet = [f"quiet-{n:02d}" for n in range(5)]
            for name in announced + quiet:  # none goes down during the test
                service = system.register(name, interval_seconds=300)
                system.beat(name)
                system.api("POST", "/v2/notification-targets", json={
                    "service_id": service["service_id"], "type": "webhook", "config": {"url": f"{hook.url}/{name}"}})
                system.api("POST", "/v2/notification-targets", json={
                    "service_id": service["service_id"], "type": "pagerduty", "config": {"routing_key": "R0UT1NG"},
                    "priority": 1})
            now = dt.datetime.now(dt.timezone.utc)
            starts, ends = now + dt.timedelta(seconds=3), now + dt.timedelta(seconds=8)
            window = system.api("POST", "/v2/maintenance-windows", json={
                "scope": "glob", "name_glob": "maint-*", "reason": "storage migration", "announce": True,
                "starts_at": iso(starts), "ends_at": iso(ends)})
            assert window["announce"] is True
            system.api("POST", "/v2/maintenance-windows", json={  # not announced: says nothing
                "scope": "glob", "name_glob": "quiet-*", "reason": "silent work",
                "starts_at": iso(now - dt.timedelta(seconds=1)), "ends_at": iso(now + dt.timedelta(seconds=4))})
            hook.wait_for(20, timeout=40)
            time.sleep(3)  # room for a duplicate or a stray message to show up
        finally:
            system.stop_all()

    bodies = [(r.path.rsplit("/", 1)[-1], r.json()) for r in hook.requests]
    assert len(bodies) == 20 and pagerduty.requests == []
    assert sorted((name, body["type"]) for name, body in bodies) == sorted(
        (name, kind) for name in announced for kind in ("window.started", "window.ended"))
    for name, body in bodies:
        assert body["service"]["heartbeat_name"] == name
        assert body["window"]["window_id"] == window["window_id"]
        assert body["window"]["reason"] == "storage migration"
        assert body["window"]["ends_at"].startswith(iso(ends)[:19])
    started = [wall(r.received_at) for r in hook.requests if r.json()["type"] == "window.started"]
    finished = [wall(r.received_at) for r in hook.requests if r.json()["type"] == "window.ended"]
    assert min(started) >= starts.timestamp() - 0.05 and min(finished) >= ends.timestamp() - 0.05
