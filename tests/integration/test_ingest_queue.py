"""The ingest queue against a real PostgreSQL: a batch's steady heartbeats are
committed by one statement, the rest by the rule in a transaction of its own,
each caller gets its own outcomes, and one failing caller neither fails its
neighbours nor gets its committed heartbeats recorded twice."""
from __future__ import annotations

import threading
import time

import pytest

from medic.errors import MedicError
from services.heartbeat.ingest import IngestQueue
from services.heartbeat.heartbeat_store import HeartbeatStore, IngestItem
from services.heartbeat.service_store import ServiceStore
from tests.integration.test_ingest_store import beat, register, service


def event_counts(db) -> dict[str, int]:
    return {r["heartbeat_name"]: r["n"] for r in db.all(
        "SELECT s.heartbeat_name, count(h.heartbeat_id) AS n FROM services s"
        " LEFT JOIN heartbeat_events h USING (service_id) GROUP BY s.heartbeat_name")}


def make_up(store: HeartbeatStore, *names: str) -> None:
    store.record_heartbeats([beat(name) for name in names])  # new -> up through the rule


def submit_as_one_batch(queue: IngestQueue, submissions: list[list[IngestItem]]) -> list:
    """Each submission from a thread of its own, all queued before the (single)
    writer starts, so that they are written as one batch. Returns each one's
    results, or the exception it raised."""
    outcomes: list = [None] * len(submissions)

    def submit(index):
        try:
            outcomes[index] = queue.submit(submissions[index])
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=submit, args=(index,)) for index in range(len(submissions))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(queue._pending) < len(submissions):
        assert time.monotonic() < deadline, "the submissions were not queued"
        time.sleep(0.01)
    queue.start()
    for thread in threads:
        thread.join(10)
    queue.stop()
    return outcomes


def test_the_steady_statement_commits_steady_heartbeats_and_leaves_the_rest_untouched(db):
    store = HeartbeatStore(db)
    for name in ("steady", "failing", "new", "inactive"):
        register(store, name)
    make_up(store, "steady", "failing")
    ServiceStore(db).update({"active": False}, heartbeat_name="inactive")
    before = {row["heartbeat_name"]: row for row in db.all("SELECT * FROM services")}

    results = store.record_steady_heartbeats([beat("steady"), beat("new"), beat("nobody"),
                                              beat("failing", "FAILED"), beat("inactive")])

    assert results[0].outcome == "accepted"
    assert results[2].outcome == "unknown_service"
    assert [results[1], results[3], results[4]] == [None, None, None]  # left to the rule
    # Committed already: another connection sees it, and no transaction is left open.
    assert event_counts(db) == {"steady": 2, "failing": 1, "new": 0, "inactive": 0}
    assert service(db, before["steady"]["service_id"])["last_heartbeat_at"] == results[0].time
    for name in ("new", "failing", "inactive"):
        assert service(db, before[name]["service_id"]) == before[name], name


def test_a_batch_of_callers_gets_each_its_outcomes_from_both_paths(db):
    store = HeartbeatStore(db)
    for name in ("up-1", "up-2", "new-1", "flaky"):
        register(store, name)
    make_up(store, "up-1", "up-2", "flaky")
    queue = IngestQueue(store, writers=1)

    outcomes = submit_as_one_batch(queue, [
        [beat("up-1"), beat("new-1")],          # steady and by the rule
        [beat("up-2"), beat("up-2")],           # steady only
        [beat("nobody"), beat("flaky", "FAILED")],  # unknown, and a failure (the rule)
    ])

    assert [[r.outcome for r in results] for results in outcomes] == [
        ["accepted", "accepted"], ["accepted", "accepted"], ["unknown_service", "accepted"]]
    assert [r.heartbeat["heartbeat_name"] for r in outcomes[0]] == ["up-1", "new-1"]
    assert event_counts(db) == {"up-1": 2, "up-2": 3, "new-1": 1, "flaky": 2}
    states = {r["heartbeat_name"]: r["state"] for r in db.all("SELECT heartbeat_name, state FROM services")}
    assert states == {"up-1": "up", "up-2": "up", "new-1": "up", "flaky": "down"}
    assert db.one("SELECT count(*) AS n FROM alerts WHERE active")["n"] == 1


@pytest.fixture
def cursed_first_heartbeat(db):
    """The database refuses the first heartbeat of the service named 'cursed' (its
    transition new -> up), as a bug or a broken row would."""
    db.execute("""
        CREATE FUNCTION refuse_cursed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT heartbeat_name FROM services WHERE service_id = NEW.service_id) = 'cursed' THEN
                RAISE EXCEPTION 'cursed';
            END IF;
            RETURN NEW;
        END $$""")
    db.execute("CREATE TRIGGER refuse_cursed BEFORE INSERT ON service_transitions"
               " FOR EACH ROW EXECUTE FUNCTION refuse_cursed()")
    yield
    db.execute("DROP TRIGGER refuse_cursed ON service_transitions")
    db.execute("DROP FUNCTION refuse_cursed()")


def test_a_caller_whose_rest_fails_fails_alone_and_nothing_is_recorded_twice(db, cursed_first_heartbeat):
    store = HeartbeatStore(db)
    for name in ("up-1", "up-2", "cursed", "new-2"):
        register(store, name)
    make_up(store, "up-1", "up-2")
    queue = IngestQueue(store, writers=1)

    outcomes = submit_as_one_batch(queue, [
        [beat("up-1"), beat("cursed")],
        [beat("up-2"), beat("new-2")],
    ])

    assert isinstance(outcomes[0], MedicError)
    assert [r.outcome for r in outcomes[1]] == ["accepted", "accepted"]
    # up-1's heartbeat was committed by the steady statement before the rule failed:
    # once, not again when the failing caller was retried alone.
    assert event_counts(db) == {"up-1": 2, "up-2": 2, "cursed": 0, "new-2": 1}
    states = {r["heartbeat_name"]: r["state"] for r in db.all("SELECT heartbeat_name, state FROM services")}
    assert states == {"up-1": "up", "up-2": "up", "cursed": "new", "new-2": "up"}
