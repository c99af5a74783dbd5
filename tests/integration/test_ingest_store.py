"""The ingest's two paths against a real PostgreSQL: the steady statement (up,
active services with signs of life only, the down rule in SQL) and the rule in
Python for everything else. They must agree with lifecycle.py (and deadline.py) and with each other."""
from __future__ import annotations

import datetime as dt
import random
import threading

import pytest

from services.heartbeat import heartbeat_store as store_module
from services.heartbeat import lifecycle
from services.heartbeat.heartbeat_store import HeartbeatStore, IngestItem, clock_of
from services.heartbeat.service_store import ServiceStore


@pytest.fixture(params=["join", "primary_key"])
def plan(request, monkeypatch):
    """Each test of the steady statement runs with both of its plans (by batch size)."""
    monkeypatch.setattr(store_module, "SMALL_BATCH", 0 if request.param == "join" else 10 ** 6)
    return request.param


def register(store: HeartbeatStore, name: str, *, interval: int = 60, threshold: int = 1, grace: int = 0) -> dict:
    row, created = ServiceStore(store.db).register({
        "heartbeat_name": name, "service_name": name, "alert_interval_seconds": interval,
        "threshold": threshold, "grace_period_seconds": grace, "team": "t", "team_id": None,
        "priority": "p3", "runbook": None, "notify_mode": "all"})
    assert created
    return row


def beat(name: str, status: str = "UP", run_id: str | None = None) -> IngestItem:
    return IngestItem(heartbeat_name=name, service_id=None, status=status, run_id=run_id)


def events(db) -> list[tuple]:
    return [(r["heartbeat_id"], r["service_id"], r["status"], r["run_id"])
            for r in db.all("SELECT * FROM heartbeat_events ORDER BY heartbeat_id")]


def send_concurrently(store: HeartbeatStore, batches: list[list[IngestItem]], rounds: int) -> list[Exception]:
    """Each batch recorded ``rounds`` times by a thread of its own; the errors raised."""
    errors = []

    def send(batch):
        try:
            for _ in range(rounds):
                store.record_heartbeats(batch)
        except Exception as exc:  # a deadlock surfaces here as Unavailable
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def service(db, service_id: int) -> dict:
    return db.one("SELECT * FROM services WHERE service_id = %s", (service_id,))


def test_steady_heartbeats_move_clocks_exactly_as_the_down_rule_does(db, plan):
    store = HeartbeatStore(db)
    rng = random.Random(8)
    before, items = {}, []
    for n in range(60):
        row = register(store, f"svc-{n}", interval=rng.randint(1, 600), threshold=rng.randint(1, 4),
                       grace=rng.choice([0, 0, 5, 60]))
        # An up service with a history: some recent beats, some older than a re-activation.
        now = db.one("SELECT now() AS now")["now"]
        activated = now - dt.timedelta(seconds=rng.randint(0, 2000))
        recent = sorted((now - dt.timedelta(seconds=rng.uniform(0, 3000))
                         for _ in range(rng.randint(0, row["threshold"]))), reverse=True)
        db.execute("UPDATE services SET state = 'up', activated_at = %s, recent_beats = %s::timestamptz[]"
                   " WHERE service_id = %s", (activated, recent, row["service_id"]))
        before[row["service_id"]] = service(db, row["service_id"])
        items += [beat(f"SVC-{n}" if k % 2 else f"svc-{n}", rng.choice(["UP", "OK", "ALIVE"]))
                  for k in range(rng.randint(1, 3))]
    rng.shuffle(items)

    results = store.record_heartbeats(items)

    assert [r.outcome for r in results] == ["accepted"] * len(items)
    assert [(r.heartbeat_id, r.service["service_id"], r.item.status, None) for r in results] == events(db)
    now = results[0].time
    for service_id, old in before.items():
        statuses = [r.item.status for r in results if r.service["service_id"] == service_id]
        expected = lifecycle.apply_heartbeats(clock_of(old), statuses, now)
        new = service(db, service_id)
        assert (new["recent_beats"], new["deadline_at"], new["state"], new["last_heartbeat_at"]) == (
            expected.recent, expected.deadline_at, expected.state, now), old["heartbeat_name"]
        assert not expected.events


def test_a_mixed_batch_gives_each_heartbeat_its_outcome_and_the_rule_its_events(db, plan):
    store = HeartbeatStore(db)
    up, new, down, inactive, flaky = (register(store, name, interval=60)
                                      for name in ("up", "new", "down", "inactive", "flaky"))
    store.record_heartbeats([beat("up"), beat("down"), beat("flaky")])
    store.record_heartbeats([beat("down", "FAILED")])
    ServiceStore(db).update({"active": False}, heartbeat_name="inactive")
    assert service(db, down["service_id"])["state"] == "down"

    items = [beat("up", run_id="r1"), IngestItem(None, up["service_id"], "UP", None), beat("nobody"),
             beat("new"), beat("down"), beat("inactive"), IngestItem(None, 10 ** 9, "UP", None),
             beat("flaky", "FAILED"), beat("flaky"), beat("up")]
    results = store.record_heartbeats(items)

    assert [r.outcome for r in results] == [
        "accepted", "accepted", "unknown_service", "accepted", "accepted", "inactive_service",
        "unknown_service", "accepted", "accepted", "accepted"]
    recorded = [r for r in results if r.outcome == "accepted"]
    # Each service's heartbeats in arrival order (services of the steady statement come first).
    assert sorted((r.heartbeat_id, r.service["service_id"], r.item.status, r.item.run_id)
                  for r in recorded) == events(db)[-len(recorded):]
    assert [r.heartbeat_id for r in recorded if r.heartbeat["heartbeat_name"] == "up"] == sorted(
        r.heartbeat_id for r in recorded if r.heartbeat["heartbeat_name"] == "up")
    assert [r.heartbeat["heartbeat_name"] for r in recorded] == ["up", "up", "new", "down", "flaky", "flaky", "up"]
    now = results[0].time
    assert service(db, up["service_id"])["recent_beats"] == [now]
    assert {s: service(db, sid)["state"] for s, sid in
            [("new", new["service_id"]), ("down", down["service_id"]), ("flaky", flaky["service_id"])]} == {
        "new": "up", "down": "up", "flaky": "up"}
    # The failure opened an alert and the sign of life after it resolved it, in that order.
    flaky_alerts = db.all("SELECT reason, active FROM alerts WHERE service_id = %s", (flaky["service_id"],))
    assert [(a["reason"], a["active"]) for a in flaky_alerts] == [("reported_failure", False)]
    transitions = db.all("SELECT reason FROM service_transitions WHERE service_id = %s ORDER BY transition_id",
                         (flaky["service_id"],))
    assert [t["reason"] for t in transitions][-2:] == ["reported_failure", "recovered"]
    assert db.one("SELECT count(*) AS n FROM alerts WHERE active")["n"] == 0


def test_a_service_with_the_longest_interval_and_a_grace_period_still_takes_heartbeats(db):
    store = HeartbeatStore(db)
    longest = register(store, "longest", interval=2**31 - 1, grace=3600)  # what the API accepts
    store.record_heartbeats([beat("longest")])  # new -> up through the rule
    results = store.record_heartbeats([beat("longest"), beat("longest")])  # the steady statement
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    assert service(db, longest["service_id"])["deadline_at"] == results[0].time + dt.timedelta(
        seconds=2**31 - 1 + 3600)


@pytest.mark.timeout(120)
def test_a_failure_in_one_batch_does_not_deadlock_a_steady_batch_over_the_same_services(db, plan):
    """The failing batch's services are locked together with its steady ones, in id order:
    locking them afterwards, for the rule, let two batches take the same rows in
    opposite orders."""
    store = HeartbeatStore(db)
    names = [register(store, f"svc-{n}")["heartbeat_name"] for n in range(50)]
    store.record_heartbeats([beat(name) for name in names])
    failing = [beat(name) for name in names[5:]] + [beat(name, "FAILED") for name in names[:5]]
    rounds = 60

    assert send_concurrently(store, [failing, [beat(n) for n in names]], rounds) == []
    assert db.one("SELECT count(*) AS n FROM heartbeat_events")["n"] == 50 + 2 * rounds * 50


@pytest.mark.timeout(120)
def test_concurrent_batches_over_the_same_services_neither_deadlock_nor_lose_heartbeats(db, plan):
    store = HeartbeatStore(db)
    names = [register(store, f"svc-{n}")["heartbeat_name"] for n in range(100)]
    store.record_heartbeats([beat(name) for name in names])  # all up: the steady statement from here on
    rounds = 40

    batches = [[beat(name) for name in order] * 2 for order in (names, names[::-1]) * 2]
    assert send_concurrently(store, batches, rounds) == []
    assert db.one("SELECT count(*) AS n FROM heartbeat_events")["n"] == 100 + 4 * rounds * 200


@pytest.mark.timeout(120)
def test_small_and_large_batches_over_the_same_services_neither_deadlock_nor_lose_heartbeats(db):
    """A small batch (locked through the primary key) and a large one (the join) take the
    same rows in the same order."""
    store = HeartbeatStore(db)
    names = [register(store, f"svc-{n}")["heartbeat_name"] for n in range(100)]
    store.record_heartbeats([beat(name) for name in names])
    small = [beat(name) for name in names[::-3]][:store_module.SMALL_BATCH]
    large = [beat(name) for name in names[::-1]] * 2
    assert len(small) <= store_module.SMALL_BATCH < len(large)
    rounds = 40

    assert send_concurrently(store, [small, large, small[::-1], large[::-1]], rounds) == []
    assert db.one("SELECT count(*) AS n FROM heartbeat_events")["n"] == 100 + 2 * rounds * (len(small) + len(large))


@pytest.mark.parametrize("steady", [False, True], ids=["first_heartbeat", "steady"])
def test_names_are_matched_by_postgresqls_lower_like_registration(db, plan, steady):
    """Registration and lookups compare lower(heartbeat_name) in PostgreSQL; the
    ingest did its own lower-casing in Python, which differs for some letters
    (İ -> i + a combining dot, final Σ -> ς), so such services never got their
    heartbeats and alerted. Each name is sent as registered and in other cases;
    which of those name the service is PostgreSQL's lower() to say (it depends on
    the database's ctype), the same as for registration and GET /service/<name>."""
    store = HeartbeatStore(db)
    registered = ["İstanbul", "ΟΔΟΣ", "Straße"]
    ids = {name: register(store, name)["service_id"] for name in registered}
    if steady:
        store.record_heartbeats([beat(name) for name in registered])
    sent = registered + ["istanbul", "i̇stanbul", "οδοσ", "οδος", "STRASSE"]
    expected = []
    for name in sent:
        match = [r for r in registered
                 if db.one("SELECT lower(%s) = lower(%s) AS same", (name, r))["same"]]
        expected.append(ids[match[0]] if match else None)
    assert expected[:3] == [ids[name] for name in registered]
    results = store.record_heartbeats([beat(name) for name in sent])
    assert [r.service["service_id"] if r.outcome == "accepted" else None for r in results] == expected
    assert [r.outcome for r in results if r.outcome != "accepted"] == ["unknown_service"] * expected.count(None)
