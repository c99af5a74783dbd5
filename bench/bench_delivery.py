#!/usr/bin/env python3
"""Delivery throughput and slow-receiver isolation, on this machine.

    .venv/bin/python bench/bench_delivery.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                             [--deliveries 2000] [--processes 2] [--workers 32]
                                             [--slow 100] [--slow-seconds 10]

Creates a fresh database, starts N delivery processes (as `medic serve delivery`
does), and measures, one after another:

  throughput  --deliveries webhook notifications enqueued, then the processes
              started: deliveries per second from the first arrival at one local
              receiver to the last (and the enqueue rate, 8 threads)
  isolation   --slow notifications to a receiver that answers after --slow-seconds,
              then 100 to a fast receiver: how long the fast ones take

Prints one JSON line per measurement. A report, not a gate (goal: >= 500/s).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from medic.db import Database  # noqa: E402
from services.delivery.outbox import OutboxStore  # noqa: E402
from services.delivery.planning import plan_deliveries  # noqa: E402
from services.delivery.servicer import event_to_domain, targets_to_domain  # noqa: E402
from tests.support.databases import LOCAL_URL, migrated_database  # noqa: E402
from tests.support.delivery import fast_settings, start_delivery_process, stop_process  # noqa: E402
from tests.support.events import alert_event, webhook_target  # noqa: E402
from tests.support.receivers import Reply, WebhookReceiver  # noqa: E402


def enqueue_many(db: Database, url: str, first_alert: int, count: int) -> None:
    store = OutboxStore(db)

    def one(n: int) -> None:
        event = event_to_domain(alert_event(n))
        targets = targets_to_domain([webhook_target(url)], [])
        store.enqueue(event, "all", plan_deliveries(event, "all", targets))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(first_alert, first_alert + count)))


def fast_latencies(db: Database, receiver: WebhookReceiver, first_alert: int,
                   count: int = 100) -> tuple[float, float, float]:
    """(p50, p99, last) seconds from the start of enqueueing ``count`` deliveries to
    ``receiver`` to each one's arrival."""
    started = time.monotonic()
    enqueue_many(db, receiver.url, first_alert, count)
    arrivals = sorted(r.received_at - started for r in receiver.wait_for(count, timeout=600))
    p99 = arrivals[max(0, int(round(0.99 * len(arrivals) + 0.5)) - 1)]
    return round(arrivals[len(arrivals) // 2], 3), round(p99, 3), round(arrivals[-1], 2)


def run(url: str, args) -> None:
    db = Database(url, 10)
    settings = fast_settings(url, delivery_workers=args.workers, delivery_per_destination=16,
                             delivery_lease_seconds=60.0,
                             delivery_http_timeout_seconds=args.slow_seconds + 5)
    processes = []
    try:
        with WebhookReceiver() as hook:
            # Enqueue first, then start the processes: the rate is measured from the
            # first to the last arrival, without the enqueue cost in it.
            started = time.monotonic()
            enqueue_many(db, hook.url, 1, args.deliveries)
            enqueued = time.monotonic() - started
            processes = [start_delivery_process(settings) for _ in range(args.processes)]
            received = hook.wait_for(args.deliveries, timeout=600)
            span = received[-1].received_at - received[0].received_at
            print(json.dumps({"measure": "throughput", "deliveries": args.deliveries,
                              "processes": args.processes, "workers": args.workers,
                              "enqueue_per_second": round(args.deliveries / enqueued, 1),
                              "seconds": round(span, 2),
                              "deliveries_per_second": round(args.deliveries / span, 1)}))

        # Isolation: 100 deliveries to a fast receiver, alone (baseline), then
        # again while --slow deliveries wait on a receiver that answers after
        # --slow-seconds. Each fast delivery's latency = its arrival - the start
        # of its batch's enqueue; goal: p99 changes by < 10 %.
        with WebhookReceiver() as fast:
            baseline = fast_latencies(db, fast, 2_000_000)
        with WebhookReceiver() as slow, WebhookReceiver() as fast:
            slow.always(Reply(200, delay=args.slow_seconds))
            enqueue_many(db, slow.url, 1_000_000, args.slow)
            time.sleep(0.5)
            loaded = fast_latencies(db, fast, 3_000_000)
            print(json.dumps({"measure": "isolation", "slow_deliveries": args.slow,
                              "slow_seconds": args.slow_seconds,
                              "slow_in_flight": len(slow.requests),
                              "fast_p50_s_alone": baseline[0], "fast_p99_s_alone": baseline[1],
                              "fast_p50_s_with_slow": loaded[0], "fast_p99_s_with_slow": loaded[1],
                              "p99_change_pct": round((loaded[1] / baseline[1] - 1) * 100, 1),
                              "fast_100_seconds": loaded[2]}))
    finally:
        for proc in processes:
            stop_process(proc, timeout=2)
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default=LOCAL_URL)
    for option, default in (("--deliveries", 2000), ("--processes", 2), ("--workers", 32), ("--slow", 100)):
        parser.add_argument(option, type=int, default=default)
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    args = parser.parse_args()

    with migrated_database(args.dsn, "medic_bench_delivery_") as url:
        run(url, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
