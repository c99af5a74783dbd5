"""The audit log's totals stay exact while the log is tallied (so that the
unfiltered total and an actor's total need not count millions of rows) and
pruned: whatever was sealed, written since or deleted by retention, the total
a query answers is the number of events that match."""
from __future__ import annotations

import time

from medic import audit
from services.heartbeat.audit_log import AuditLog, AuditQuery
from services.heartbeat.retention import Retention

CAROL_BY_KEY = audit.Who(principal="key:k1", key_id="k1", key_name="deploy-bot", actor="carol")
KEY_ALONE = audit.Who(principal="key:k1", key_id="k1", key_name="deploy-bot")
OTHER_KEY = audit.Who(principal="key:k2", key_id="k2", key_name="ops")


def _write(db, who: audit.Who, count: int) -> None:
    with db.transaction() as tx:
        for n in range(count):
            audit.record(tx, source="routing", action_type="update", resource="team", resource_id=n, who=who,
                         before={"n": n}, after={"n": n + 1})


def _totals(log: AuditLog) -> dict[str, int]:
    return {asked: log.events(AuditQuery(actor=asked))[1] for asked in ("carol", "deploy-bot", "k1", "ops", "k2")} | {
        "all": log.events(AuditQuery())[1]}


def _counted(db) -> dict[str, int]:
    def n(where: str, value=None) -> int:
        return db.one(f"SELECT count(*) AS n FROM audit_events {where}", (value,) * where.count("%s"))["n"]
    who = "WHERE actor = %s OR key_name = %s OR key_id = %s"
    return {asked: n(who, asked) for asked in ("carol", "deploy-bot", "k1", "ops", "k2")} | {"all": n("")}


def _seal(db, log: AuditLog) -> None:
    """Seals the newest event: the first pass chooses it, a later one seals it
    once no transaction of the server (any database's) that began before is
    still running."""
    log.seal_tally(settle_seconds=0)
    newest = db.one("SELECT max(event_id) AS id FROM audit_events")["id"]
    for _ in range(300):
        log.seal_tally(settle_seconds=0)
        if db.one("SELECT sealed_upto FROM audit_event_tally_mark")["sealed_upto"] == newest:
            return
        time.sleep(0.1)
    raise AssertionError("a transaction of the server outlived 30 s of sealing")


def test_totals_stay_exact_across_sealing_new_events_and_retention(db):
    log = AuditLog(db)
    _write(db, CAROL_BY_KEY, 3)
    _write(db, KEY_ALONE, 2)
    _write(db, OTHER_KEY, 4)
    assert _totals(log) == _counted(db) == {"carol": 3, "deploy-bot": 5, "k1": 5, "ops": 4, "k2": 4, "all": 9}

    _seal(db, log)
    assert db.one("SELECT sum(events)::bigint AS n FROM audit_event_tally")["n"] == 9
    _write(db, CAROL_BY_KEY, 2)       # after the mark: counted, not tallied
    assert _totals(log) == _counted(db) == {"carol": 5, "deploy-bot": 7, "k1": 7, "ops": 4, "k2": 4, "all": 11}

    # Retention deletes tallied and untallied events alike, and the totals follow.
    db.execute("UPDATE audit_events SET at = now() - interval '401 days'"
               " WHERE event_id IN (SELECT event_id FROM audit_events ORDER BY event_id LIMIT 4)"
               " OR event_id = (SELECT max(event_id) FROM audit_events)")
    Retention(db, retention_days=30, interval_seconds=3600, pause_seconds=0, audit_retention_days=400).run_once()
    assert _counted(db)["all"] == 6
    assert _totals(log) == _counted(db)


def test_a_page_of_an_actor_comes_newest_first_from_any_of_the_three_columns(db):
    log = AuditLog(db)
    _write(db, OTHER_KEY, 2)
    _write(db, CAROL_BY_KEY, 2)
    _write(db, KEY_ALONE, 2)
    rows, total = log.events(AuditQuery(actor="k1", limit=3))
    assert total == 4 and len(rows) == 3
    assert [r["event_id"] for r in rows] == sorted((r["event_id"] for r in rows), reverse=True)
    assert all(r["key_id"] == "k1" for r in rows) and rows[0]["actor"] is None  # the newest: no X-Actor
    rest, _ = log.events(AuditQuery(actor="k1", limit=3, offset=3))
    assert len(rest) == 1 and rest[0]["event_id"] < rows[-1]["event_id"]
