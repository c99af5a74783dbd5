"""Retention of heartbeat events against a real PostgreSQL: old events go in
short batches, recent ones stay, and the heartbeats the down rule still needs
stay however old they are."""
from __future__ import annotations

import time

import pytest

from medic.config import Settings
from medic.v1 import heartbeat_pb2 as pb
from services.heartbeat.lifecycle import LifecyclePolicy
from services.heartbeat.monitor import Monitor
from services.heartbeat.retention import Retention

DAY = 86400


@pytest.fixture
def settings(database_url):
    # The test drives the monitor by hand: none runs in the server.
    return Settings(database_url=database_url, monitor_enabled=False)


def retention(db, **kw) -> Retention:
    options = dict(retention_days=30, interval_seconds=3600, pause_seconds=0)
    options.update(kw)
    return Retention(db, **options)


def register(stub, name, interval, threshold=1):
    return stub.RegisterService(pb.RegisterServiceRequest(
        heartbeat_name=name, service_name=name, alert_interval_seconds=interval,
        threshold=threshold)).service


def beat(stub, name, status="UP"):
    stub.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name=name, status=status))


def add_old_events(db, service_id, count, days_ago=40, status="UP"):
    """Events recorded long ago (the ingest always stamps now(), so they are written here)."""
    db.execute("INSERT INTO heartbeat_events (service_id, time, status)"
               " SELECT %s, now() - make_interval(days => %s) - i * interval '1 second', %s"
               " FROM generate_series(1, %s) AS i", (service_id, days_ago, status, count))


def age_service(db, service_id, *, beats_days, activated_days):
    """As if the service's heartbeats were `beats_days` old and it was registered
    `activated_days` ago: its events and its clock move back together."""
    shift = f"{beats_days} days"
    db.execute("UPDATE heartbeat_events SET time = time - %s::interval WHERE service_id = %s",
               (shift, service_id))
    db.execute("""UPDATE services SET
                      recent_beats = ARRAY(SELECT t - %(shift)s::interval
                                           FROM unnest(recent_beats) WITH ORDINALITY AS r(t, i) ORDER BY i),
                      last_heartbeat_at = last_heartbeat_at - %(shift)s::interval,
                      deadline_at = deadline_at - %(shift)s::interval,
                      activated_at = activated_at - make_interval(days => %(activated)s),
                      created_at = created_at - make_interval(days => %(activated)s)
                  WHERE service_id = %(id)s""",
               {"shift": shift, "activated": activated_days, "id": service_id})


def event_count(db, service_id, older_than_days=None):
    if older_than_days is None:
        return db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s",
                      (service_id,))["n"]
    return db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s"
                  " AND time < now() - make_interval(days => %s)", (service_id, older_than_days))["n"]


def test_events_older_than_the_retention_go_and_recent_ones_stay(heartbeats, db):
    web = register(heartbeats, "web", interval=60)
    add_old_events(db, web.service_id, 25, days_ago=31)
    add_old_events(db, web.service_id, 4, days_ago=29)  # inside the retention
    for _ in range(3):
        beat(heartbeats, "web")

    assert retention(db).run_once() == 25
    assert event_count(db, web.service_id, older_than_days=30) == 0
    assert event_count(db, web.service_id) == 4 + 3


def test_old_events_of_a_service_deleted_behind_the_stores_back_still_expire(heartbeats, db):
    web = register(heartbeats, "web", interval=60)
    gone = register(heartbeats, "gone", interval=60)
    add_old_events(db, web.service_id, 5, days_ago=31)
    add_old_events(db, gone.service_id, 7, days_ago=31)
    add_old_events(db, gone.service_id, 2, days_ago=1)
    beat(heartbeats, "web")
    # No foreign key cascades to the events: a plain SQL delete leaves them.
    db.execute("DELETE FROM services WHERE service_id = %s", (gone.service_id,))
    assert retention(db).run_once() == 5 + 7
    assert event_count(db, gone.service_id) == 2  # recent ones wait for their turn
    assert event_count(db, web.service_id) == 1


def test_a_backlog_larger_than_a_batch_goes_in_several_batches(heartbeats, db):
    web = register(heartbeats, "web", interval=60)
    add_old_events(db, web.service_id, 95)
    beat(heartbeats, "web")
    job = retention(db, batch=10)

    assert job.delete_batch() == 10  # one short transaction deletes at most a batch
    assert job.run_once() == 85
    assert job.run_once() == 0
    assert event_count(db, web.service_id) == 1


def test_the_latest_threshold_heartbeats_stay_however_old_so_the_monitor_raises_no_false_alert(heartbeats, db):
    # A job that runs every 45 days, down after 3 missed runs, registered 100 days ago,
    # whose last 5 runs were 40 days ago: older than the retention, still needed.
    job = register(heartbeats, "quarterly", interval=45 * DAY, threshold=3)
    for _ in range(5):
        beat(heartbeats, "quarterly")
    age_service(db, job.service_id, beats_days=40, activated_days=100)
    web = register(heartbeats, "web", interval=60)
    add_old_events(db, web.service_id, 7)
    beat(heartbeats, "web")

    assert retention(db).run_once() == 2 + 7  # the 2 oldest runs and web's old events
    assert event_count(db, job.service_id) == 3
    # A stale deadline makes the monitor re-check the down rule against heartbeat_events:
    # with the 3 runs kept, h_3 + 45 days is still ahead, so no alert.
    db.execute("UPDATE services SET deadline_at = now() - interval '1 second' WHERE service_id = %s",
               (job.service_id,))
    monitor = Monitor(db, policy=LifecyclePolicy(), tick_seconds=0.1, batch=100,
                      mute_ttl_seconds=DAY, on_committed=lambda changes: None)
    assert monitor.tick().opened == []
    assert db.one("SELECT count(*) AS n FROM alerts WHERE service_id = %s", (job.service_id,))["n"] == 0


def test_old_failures_go_even_when_they_are_the_newest_events(heartbeats, db):
    # Reported failures never count for the down rule, so nothing keeps them.
    job = register(heartbeats, "nightly", interval=DAY)
    add_old_events(db, job.service_id, 3, days_ago=40, status="FAILED")

    assert retention(db).run_once() == 3
    assert event_count(db, job.service_id) == 0


def test_the_retention_thread_runs_at_start_and_stops_promptly(heartbeats, db):
    web = register(heartbeats, "web", interval=60)
    add_old_events(db, web.service_id, 30)
    job = retention(db, batch=10, interval_seconds=3600)
    job.start()
    try:
        deadline = time.monotonic() + 10
        while event_count(db, web.service_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert event_count(db, web.service_id) == 0
    finally:
        job.stop(timeout=5)
    assert not job._loop._thread.is_alive()  # woken from its hour-long wait, not left behind


def test_audit_events_and_snapshots_older_than_their_retention_go_with_the_same_job(heartbeats, db):
    register(heartbeats, "svc", 60)
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="svc", muted=True))
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="svc", muted=False))
    # Two events and a snapshot aged past 400 days; the rest is recent.
    db.execute("UPDATE audit_events SET at = now() - interval '401 days' WHERE action_type IN ('register', 'mute')")
    db.execute("UPDATE service_snapshots SET created_at = now() - interval '401 days' WHERE action_type = 'mute'")

    retention(db, audit_retention_days=400).run_once()

    assert [r["action_type"] for r in db.all("SELECT action_type FROM audit_events")] == ["unmute"]
    assert [r["action_type"] for r in db.all("SELECT action_type FROM service_snapshots")] == ["unmute"]


def test_audit_retention_defaults_to_400_days():
    from medic.config import Settings
    assert Settings().audit_retention_days == 400
    assert Settings.from_env({"MEDIC_AUDIT_RETENTION_DAYS": "30"}).audit_retention_days == 30
