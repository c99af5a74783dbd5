"""A team update's audit event says what the update overwrote, even when
another change to the team commits while it waits for the row: its ``before``
is the team as that other change left it, never an older copy."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2

from services.routing.team_store import TeamStore


def _events(db, team_id: int) -> list[dict]:
    return db.all("SELECT before, after FROM audit_events WHERE resource = 'team' AND resource_id = %s"
                  " AND action_type = 'update' ORDER BY event_id", (str(team_id),))


def _wait_for_a_lock_wait(db, timeout: float = 10.0) -> None:
    """Until a statement of this database waits for a row lock (the update, queued behind the other writer)."""
    deadline = time.monotonic() + timeout
    while db.one("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                 " AND wait_event_type = 'Lock'")["n"] == 0:
        assert time.monotonic() < deadline, "the update never waited for the row"
        time.sleep(0.01)


def test_before_is_what_a_concurrent_change_left(db, database_url):
    store = TeamStore(db)
    team_id = store.create_team("payments", None)["team_id"]

    other = psycopg2.connect(database_url)
    try:
        with other.cursor() as cur:  # another writer holds the row, its change not yet committed
            cur.execute("SET search_path = medic")
            cur.execute("UPDATE teams SET name = 'payments-eu' WHERE team_id = %s", (team_id,))
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(store.update_team, team_id, {"slack_channel_id": "C42"})
            _wait_for_a_lock_wait(db)
            other.commit()
            updated = waiting.result(timeout=10)
    finally:
        other.close()

    assert updated["name"] == "payments-eu"
    [event] = _events(db, team_id)
    assert event["before"] == {"team_id": team_id, "name": "payments-eu", "slack_channel_id": None}
    assert event["after"] == {"team_id": team_id, "name": "payments-eu", "slack_channel_id": "C42"}


def test_concurrent_updates_leave_an_unbroken_chain(db):
    store = TeamStore(db)
    team_id = store.create_team("search", "C0")["team_id"]
    channels = [f"C{n}" for n in range(1, 21)]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda channel: store.update_team(team_id, {"slack_channel_id": channel}), channels))

    # Each event starts where another ended: following them from the team's
    # first channel passes every update once and ends where the team is now.
    steps = {e["before"]["slack_channel_id"]: e["after"]["slack_channel_id"] for e in _events(db, team_id)}
    assert len(steps) == len(channels)
    seen, channel = [], "C0"
    while channel in steps:
        channel = steps.pop(channel)
        seen.append(channel)
    assert sorted(seen) == sorted(channels)
    assert channel == store.team(team_id)["slack_channel_id"]
