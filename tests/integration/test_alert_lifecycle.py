"""The alert lifecycle against a real PostgreSQL: the monitor, the heartbeat path
and service changes open and close alerts and write the notification outbox."""
from __future__ import annotations

import dataclasses
import threading
import time

import grpc
import pytest

from medic.config import Settings
from medic.db import Database
from medic.server import create_server
from tests.support.authorizers import AllowAll
from medic.v1 import heartbeat_pb2 as pb, routing_pb2_grpc
from services.heartbeat.lifecycle import LifecyclePolicy
from services.heartbeat.handoff import Dispatcher
from services.heartbeat.monitor import Monitor
from tests.support.ports import free_port


@pytest.fixture
def settings(database_url):
    # The tests drive the monitor by hand: none runs in the server.
    return Settings(database_url=database_url, monitor_enabled=False)


def monitor(db, **kw) -> Monitor:
    options = dict(policy=LifecyclePolicy(reminder_min_seconds=kw.pop("reminder_min", 60)), tick_seconds=0.1,
                   batch=kw.pop("batch", 500), mute_ttl_seconds=kw.pop("mute_ttl", 86400),
                   on_committed=lambda changes: None)
    options.update(kw)
    return Monitor(db, **options)


def register(stub, name="web", interval=1, **fields):
    return stub.RegisterService(pb.RegisterServiceRequest(
        heartbeat_name=name, service_name=name, alert_interval_seconds=interval, **fields)).service


def beat(stub, name="web", status="UP"):
    return stub.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name=name, status=status))


def notifications(db, service_id=None):
    rows = db.all("SELECT n.kind, n.event_id FROM alert_notifications n JOIN alerts a USING (alert_id)"
                  " WHERE %(sid)s IS NULL OR a.service_id = %(sid)s ORDER BY n.notification_id",
                  {"sid": service_id})
    return [r["kind"] for r in rows]


def alerts(db, service_id):
    return db.all("SELECT alert_id, reason, active FROM alerts WHERE service_id = %s ORDER BY alert_id",
                  (service_id,))


def test_silent_service_opens_one_alert_and_one_trigger(heartbeats, db):
    service = register(heartbeats)
    beat(heartbeats)
    m = monitor(db)
    assert m.tick().opened == []  # not yet due
    time.sleep(1.1)
    assert m.tick().opened == ["missed_heartbeats"]
    assert m.tick().opened == []
    assert [(a["reason"], a["active"]) for a in alerts(db, service.service_id)] == [("missed_heartbeats", True)]
    assert notifications(db, service.service_id) == ["trigger"]
    assert heartbeats.GetService(pb.GetServiceRequest(service_id=service.service_id)).service.state == \
        pb.SERVICE_STATE_DOWN


def test_never_seen_service_alerts_once_after_its_first_deadline(heartbeats, db):
    service = register(heartbeats, grace_period_seconds=1)
    m = monitor(db)
    time.sleep(1.2)
    assert m.tick().opened == []  # interval + grace not over yet
    time.sleep(0.9)
    assert m.tick().opened == ["missed_heartbeats"]
    for _ in range(3):
        assert m.tick().opened == []
    assert len(alerts(db, service.service_id)) == 1


def test_threshold_is_rechecked_against_recorded_heartbeats(heartbeats, db):
    service = register(heartbeats, interval=2, threshold=2)
    beat(heartbeats)
    beat(heartbeats)
    # A stale deadline in the past does not open an alert: the events say otherwise.
    db.execute("UPDATE services SET deadline_at = now() - interval '1 second' WHERE service_id = %s",
               (service.service_id,))
    assert monitor(db).tick().opened == []
    fixed = db.one("SELECT deadline_at > now() AS future FROM services WHERE service_id = %s",
                   (service.service_id,))
    assert fixed["future"]


def test_heartbeat_resolves_the_alert_at_once_with_a_resolve(heartbeats, db):
    service = register(heartbeats)
    time.sleep(1.1)
    monitor(db).tick()
    beat(heartbeats)
    assert [(a["reason"], a["active"]) for a in alerts(db, service.service_id)] == [("missed_heartbeats", False)]
    assert notifications(db, service.service_id) == ["trigger", "resolve"]
    state = heartbeats.GetService(pb.GetServiceRequest(service_id=service.service_id)).service.state
    assert state == pb.SERVICE_STATE_UP


def test_reported_failure_opens_an_alert_at_once_and_recovery_resolves_it(heartbeats, db):
    service = register(heartbeats, interval=60)
    beat(heartbeats)
    beat(heartbeats, status="FAILED")
    beat(heartbeats, status="DOWN")  # already down: no second alert
    assert [(a["reason"], a["active"]) for a in alerts(db, service.service_id)] == [("reported_failure", True)]
    assert notifications(db, service.service_id) == ["trigger"]
    beat(heartbeats, status="COMPLETED")
    assert [a["active"] for a in alerts(db, service.service_id)] == [False]
    assert notifications(db, service.service_id) == ["trigger", "resolve"]


def test_muted_service_opens_an_alert_sends_nothing_and_after_the_mute_expires_its_trigger_then_reminders_flow(
        heartbeats, db):
    service = register(heartbeats)
    heartbeats.UpdateService(pb.UpdateServiceRequest(service_id=service.service_id, muted=True))
    m = monitor(db, reminder_min=1, mute_ttl=2.5)
    time.sleep(1.1)
    assert m.tick().opened == ["missed_heartbeats"]
    time.sleep(1.1)
    m.tick()  # a reminder falls due while muted: skipped
    assert notifications(db, service.service_id) == []
    time.sleep(1.5)
    m.tick()  # mute expired in this pass
    assert not heartbeats.GetService(pb.GetServiceRequest(service_id=service.service_id)).service.muted
    time.sleep(1.1)
    m.tick()
    # Nobody was told of the alert yet: the TRIGGER the mute held back goes first.
    assert notifications(db, service.service_id) == ["trigger"]
    time.sleep(1.1)
    m.tick()
    assert notifications(db, service.service_id) == ["trigger", "reminder"]
    kinds = db.all("SELECT event_id FROM alert_notifications ORDER BY notification_id")
    assert [k["event_id"].split("-", 2)[-1] for k in kinds] == ["trigger", "reminder-1"]
    skipped = db.all("SELECT kind, reason FROM notification_skips ORDER BY skip_id")
    # One skip, with its reason, for each time the TRIGGER was due while muted.
    assert {(s["kind"], s["reason"]) for s in skipped} == {("trigger", "muted")} and len(skipped) >= 2


def test_deactivating_a_service_resolves_its_alert(heartbeats, db):
    service = register(heartbeats)
    time.sleep(1.1)
    monitor(db).tick()
    heartbeats.UpdateService(pb.UpdateServiceRequest(service_id=service.service_id, active=False))
    assert [a["active"] for a in alerts(db, service.service_id)] == [False]
    assert notifications(db, service.service_id) == ["trigger", "resolve"]
    assert monitor(db).tick().opened == []


def test_every_transition_is_recorded_and_queryable(heartbeats, db):
    service = register(heartbeats)
    beat(heartbeats)
    time.sleep(1.1)
    monitor(db).tick()
    beat(heartbeats)
    heartbeats.UpdateService(pb.UpdateServiceRequest(service_id=service.service_id, muted=True))
    history = heartbeats.ListServiceTransitions(pb.ListServiceTransitionsRequest(
        service_id=service.service_id)).transitions
    assert [(t.reason, t.to_state) for t in reversed(history)] == [
        ("first_heartbeat", pb.SERVICE_STATE_UP), ("missed_heartbeats", pb.SERVICE_STATE_DOWN),
        ("recovered", pb.SERVICE_STATE_UP), ("muted", pb.SERVICE_STATE_UP)]
    assert history[1].alert_id == history[2].alert_id > 0
    assert all(t.HasField("at") for t in history)


def test_two_monitors_open_exactly_one_alert_per_silent_service(heartbeats, db, database_url):
    ids = [register(heartbeats, f"svc-{n}").service_id for n in range(100)]
    time.sleep(1.1)
    databases = [Database(database_url, size=2) for _ in range(2)]
    monitors = [monitor(d, batch=7) for d in databases]
    barrier = threading.Barrier(2)
    opened = []

    def run(m):
        barrier.wait()
        for _ in range(5):
            opened.extend(m.tick().opened)

    threads = [threading.Thread(target=run, args=(m,)) for m in monitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in databases:
        d.close()
    assert len(opened) == 100
    rows = db.one("SELECT count(*) AS alerts, count(DISTINCT service_id) AS services FROM alerts")
    assert rows == {"alerts": 100, "services": 100}
    assert notifications(db).count("trigger") == 100
    assert db.one("SELECT count(DISTINCT event_id) AS n FROM alert_notifications")["n"] == 100
    assert set(ids) == {r["service_id"] for r in db.all("SELECT service_id FROM alerts")}


def test_hand_off_retries_until_routing_accepts_and_keeps_the_order(heartbeats, db, settings):
    """Routing (real, with a real delivery behind it) is down at first, then comes up."""
    from medic.v1 import delivery_pb2, delivery_pb2_grpc, events_pb2
    from services.routing import app as routing_app
    from tests.support.routing import start_delivery

    service = register(heartbeats, interval=60)
    beat(heartbeats, status="FAILED")
    beat(heartbeats, status="UP")
    port = free_port()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    routing = routing_pb2_grpc.RoutingServiceStub(channel)
    dispatcher = Dispatcher(db, lambda r: routing.RouteAlerts(r, timeout=1), workers=1)
    assert dispatcher.dispatch_once() == 1  # routing down: the TRIGGER is scheduled again
    pending = db.one("SELECT attempts, last_error, handed_off_at FROM alert_notifications WHERE kind = 'trigger'")
    assert pending["attempts"] == 1 and "UNAVAILABLE" in pending["last_error"] and pending["handed_off_at"] is None
    assert dispatcher.dispatch_once() == 0  # the RESOLVE waits for its TRIGGER; the TRIGGER for its retry

    delivery = start_delivery(settings, "http://127.0.0.1:9")
    routing_settings = dataclasses.replace(settings, delivery_target=f"127.0.0.1:{delivery.port}",
                                           slack_default_channel="CFALLBACK")
    running = create_server(routing_app.build(routing_settings, db=db), port=port, authorizer=AllowAll())
    delivery_channel = grpc.insecure_channel(f"127.0.0.1:{delivery.port}")
    try:
        db.execute("UPDATE alert_notifications SET due_at = now()")  # skip the back-off pause
        deadline = time.monotonic() + 15
        while db.one("SELECT count(*) AS n FROM alert_notifications WHERE handed_off_at IS NULL")["n"]:
            dispatcher.dispatch_once()
            assert time.monotonic() < deadline, "notifications were never handed off"
            time.sleep(0.05)
        alert_id = db.one("SELECT alert_id FROM alerts")["alert_id"]
        rows = delivery_pb2_grpc.DeliveryServiceStub(delivery_channel).ListDeliveries(
            delivery_pb2.ListDeliveriesRequest(alert_id=alert_id)).deliveries
    finally:
        delivery_channel.close()
        running.stop(0)
        delivery.stop(0)
        channel.close()
    by_id = sorted(rows, key=lambda d: d.delivery_id)
    assert [(d.kind, d.destination) for d in by_id] == [
        (events_pb2.ALERT_EVENT_KIND_TRIGGER, "CFALLBACK"), (events_pb2.ALERT_EVENT_KIND_RESOLVE, "CFALLBACK")]
    assert db.one("SELECT notification_count FROM alerts")["notification_count"] == 1
    assert service.service_id == by_id[0].service_id


def test_the_monitor_counts_services_by_state(heartbeats, db):
    from prometheus_client import REGISTRY

    register(heartbeats, "never-beat", interval=3600)
    register(heartbeats, "steady", interval=3600)
    beat(heartbeats, "steady")
    register(heartbeats, "silent")
    beat(heartbeats, "silent")
    retired = register(heartbeats, "retired", interval=3600)
    heartbeats.UpdateService(pb.UpdateServiceRequest(service_id=retired.service_id, active=False))
    time.sleep(1.1)  # "silent" misses its 1 s deadline
    watcher = monitor(db)
    watcher.tick()
    watcher.refresh_gauges()  # every 5 s on its own thread, beside the passes
    counts = {state: REGISTRY.get_sample_value("medic_services", {"state": state})
              for state in ("new", "up", "down", "inactive")}
    assert counts == {"new": 1, "up": 1, "down": 1, "inactive": 1}
