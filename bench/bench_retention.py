#!/usr/bin/env python3
"""Retention of heartbeat events: batched deletes, on this machine.

    .venv/bin/python bench/bench_retention.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                              [--old 1000000] [--recent 100000] [--services 1000]
                                              [--batch 5000]

Creates a fresh database, loads --old heartbeat events older than the retention
(40-60 days old) and --recent ones from the last day with ``generate_series``,
spread over --services services, then runs ``Retention.run_once()`` batch by
batch while a second thread keeps inserting heartbeats (as the ingest does) and
records how long each INSERT waited. Prints one JSON line:

  rows_per_second        old rows deleted per second, pauses between batches excluded
  batch_ms               min / median / p95 / max time of one batch = how long it holds its
                         row locks (the only other lock, ROW EXCLUSIVE, blocks no INSERT/SELECT)
  insert_ms              median / max latency of the concurrent single-row INSERTs
  plan                   EXPLAIN of one batch (the index on time must be used)

A report, not a gate.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from medic.db import Database  # noqa: E402
from services.heartbeat.heartbeat_store import DELETE_EXPIRED_BATCH  # noqa: E402
from services.heartbeat.retention import Retention  # noqa: E402
from tests.support.databases import LOCAL_URL, migrated_database  # noqa: E402

LOAD_SERVICES = """
    INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, recent_beats)
    SELECT 'bench-' || i, 'bench', 60, ARRAY[now() - interval '1 minute']
    FROM generate_series(1, %(services)s) AS i
"""

# Old events spread evenly over 40-60 days ago, recent ones over the last day.
LOAD_EVENTS = """
    INSERT INTO heartbeat_events (service_id, time, status)
    SELECT s.first + (i %% %(services)s), now() - %(newest)s::interval
                                          - (i::float / %(rows)s) * %(span)s::interval, 'UP'
    FROM generate_series(1, %(rows)s) AS i, (SELECT min(service_id) AS first FROM services) s
"""

INSERT_ONE = "INSERT INTO heartbeat_events (service_id, time, status) VALUES (%s, now(), 'UP')"


def load(db: Database, args) -> None:
    started = time.perf_counter()
    with db.transaction() as tx:
        tx.execute(LOAD_SERVICES, {"services": args.services})
    with db.transaction() as tx:
        tx.execute(LOAD_EVENTS, {"services": args.services, "rows": args.old,
                                 "newest": "40 days", "span": "20 days"})
        tx.execute(LOAD_EVENTS, {"services": args.services, "rows": args.recent,
                                 "newest": "0 days", "span": "1 day"})
    with db.connection() as conn:  # fresh statistics, as autovacuum would have after a load
        with conn.cursor() as cur:  # pooled connections are in autocommit: VACUUM may run
            cur.execute("VACUUM ANALYZE heartbeat_events")
            cur.execute("ANALYZE services")
    print(f"loaded {args.old} old + {args.recent} recent events in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)


def explain(db: Database, batch: int) -> list[str]:
    with db.transaction() as tx:
        rows = tx.all("EXPLAIN " + DELETE_EXPIRED_BATCH, {"days": 30, "batch": batch})
    return [r["QUERY PLAN"] for r in rows]


class Inserter(threading.Thread):
    """Keeps inserting heartbeats, as the ingest does, and records each latency."""

    def __init__(self, db: Database, service_id: int):
        super().__init__(daemon=True)
        self.db, self.service_id = db, service_id
        self.latencies: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.perf_counter()
            with self.db.transaction() as tx:
                tx.execute(INSERT_ONE, (self.service_id,))
            self.latencies.append(time.perf_counter() - started)
            self.done.wait(0.01)


def measure(db: Database, args) -> dict:
    retention = Retention(db, retention_days=30, interval_seconds=3600, batch=args.batch)
    first_service = db.one("SELECT min(service_id) AS id FROM services")["id"]
    inserter = Inserter(db, first_service)
    inserter.start()
    batches: list[float] = []
    deleted = 0
    while True:
        started = time.perf_counter()
        n = retention.delete_batch()
        batches.append(time.perf_counter() - started)
        deleted += n
        if n < args.batch:
            break
        time.sleep(retention.pause_seconds)
    inserter.done.set()
    inserter.join()
    left = db.one("SELECT count(*) AS n FROM heartbeat_events WHERE time < now() - interval '30 days'")["n"]
    ms = sorted(b * 1000 for b in batches)
    inserts = sorted(x * 1000 for x in inserter.latencies)
    return {
        "old_rows": args.old, "recent_rows": args.recent, "services": args.services,
        "batch": args.batch, "batches": len(batches), "deleted": deleted, "old_rows_left": left,
        "rows_per_second": round(deleted / sum(batches)),
        "batch_ms": {"min": round(ms[0], 1), "median": round(statistics.median(ms), 1),
                     "p95": round(ms[int(len(ms) * 0.95) - 1], 1), "max": round(ms[-1], 1)},
        "insert_ms": {"count": len(inserts), "median": round(statistics.median(inserts), 2),
                      "max": round(inserts[-1], 2)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=LOCAL_URL, help="a server where databases may be created")
    parser.add_argument("--old", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()

    with migrated_database(args.dsn, "medic_bench_retention_") as url:
        db = Database(url, 4, application_name="bench-retention")
        try:
            load(db, args)
            plan = explain(db, args.batch)
            result = measure(db, args)
            result["plan"] = plan
            print(json.dumps(result))
        finally:
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
