#!/usr/bin/env python3
"""Detection latency and idle monitor tick (goal 3 of issue 8).

    .venv/bin/python bench/detection.py [--dsn ...] [--services 100000] [--silent 1000]
                                        [--tick-services 1000000] [--ticks 50] [--only latency,tick]

latency  `medic up` against a fresh database; a global webhook subscription
         (POST /v2/webhooks) to a local receiver; --services registered with bulk
         SQL (setup speed), of which --silent have an interval of 5-10 s and a
         last heartbeat "now" (then nothing: they go silent at once), the others
         an interval of 1 h. Measured per silent service: arrival of its
         `alert.triggered` webhook (wall clock) minus its deadline_at (database
         clock, same machine). Goal: p99 <= 1 s.
tick     a fresh migrated database with --tick-services services (bulk SQL, all
         healthy, ANALYZEd), then `Monitor.tick()` (the real class) called --ticks
         times in this process: duration p50/p99/max. Goal: <= 10 ms.

Prints one JSON line per figure. A report, not a gate.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.common import (  # noqa: E402
    Medic, command_line, emit_figures, idle_monitor, pct, register_bulk, wait_for_quiet)
from bench.receivers import Arrivals  # noqa: E402
from tests.support.databases import migrated_database  # noqa: E402


def alert_triggered(event: dict) -> str | None:
    """The heartbeat name of an alert.triggered webhook (the arrivals the benchmark waits for)."""
    return event["service"]["heartbeat_name"] if event.get("type") == "alert.triggered" else None


def api(medic: Medic, method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        medic.gateway_url + path, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {medic.admin_key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def silent_services(dsn: str, count: int) -> dict[str, float]:
    """Inserts ``count`` services beating "now" with 5-10 s intervals; their deadlines."""
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    with conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, state,
                                     recent_beats, last_heartbeat_at, deadline_at)
               SELECT 'silent-' || lpad(n::text, 5, '0'), 'bench', 5 + n %% 6, 'up', ARRAY[now()],
                      now(), now() + make_interval(secs => 5 + n %% 6)
               FROM generate_series(0, %s - 1) AS n
               RETURNING heartbeat_name, extract(epoch FROM deadline_at)""", (count,))
        deadlines = {name: float(at) for name, at in cur.fetchall()}
    conn.close()
    return deadlines


def bench_latency(args) -> dict:
    receiver = Arrivals(alert_triggered, "/medic")
    try:
        env = {"MEDIC_WEBHOOK_ALLOW_PRIVATE": "true", **dict(kv.split("=", 1) for kv in args.env)}
        with Medic(args.dsn, env_overrides=env) as medic:
            api(medic, "POST", "/v2/webhooks", {"url": receiver.url})
            register_bulk(medic.dsn, args.services - args.silent)  # healthy, 1 h interval
            with psycopg2.connect(medic.dsn) as conn, conn.cursor() as cur:
                cur.execute("ANALYZE medic.services")
            load = wait_for_quiet(max_wait=60)
            deadlines = silent_services(medic.dsn, args.silent)
            last_deadline = max(deadlines.values())
            while time.time() < last_deadline + args.timeout and len(receiver.arrived) < args.silent:
                time.sleep(0.2)
            time.sleep(1)
            stages = stage_delays(medic.dsn, deadlines)
    finally:
        receiver.close()
    delays = sorted(receiver.arrived[name] - deadlines[name]
                    for name in deadlines if name in receiver.arrived)
    return {"figure": "detection_deadline_to_webhook", "services": args.services, "silent": args.silent,
            "received": len(delays), "p50_s": pct(delays, 50), "p99_s": pct(delays, 99),
            "max_s": delays[-1] if delays else None, "min_s": delays[0] if delays else None,
            "load1": load, "stages_p50_p99_s": stages}


STAGES = """
    SELECT s.heartbeat_name, extract(epoch FROM a.opened_at) AS alert_opened,
           extract(epoch FROM n.handed_off_at) AS handed_to_routing,
           extract(epoch FROM d.created_at) AS delivery_enqueued,
           extract(epoch FROM d.last_attempt_at) AS delivery_attempted
    FROM medic.services s
    JOIN medic.alerts a ON a.service_id = s.service_id
    LEFT JOIN medic.alert_notifications n ON n.alert_id = a.alert_id AND n.kind = 'trigger'
    LEFT JOIN medic.deliveries d ON d.alert_id = a.alert_id AND d.kind = 'trigger'
    WHERE s.heartbeat_name LIKE 'silent-%%'
"""


def stage_delays(dsn: str, deadlines: dict[str, float]) -> dict[str, list]:
    """Where the time goes: each stage's [p50, p99] seconds after the deadline."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(STAGES)
        rows = cur.fetchall()
    conn.close()
    stages: dict[str, list[float]] = {"alert_opened": [], "handed_to_routing": [], "delivery_enqueued": [],
                                      "delivery_attempted": []}
    for name, *times in rows:
        for stage, at in zip(stages, times):
            if at is not None and name in deadlines:
                stages[stage].append(float(at) - deadlines[name])
    return {stage: [round(pct(sorted(v), 50), 3), round(pct(sorted(v), 99), 3)] for stage, v in stages.items() if v}


def bench_tick(args) -> dict:
    from medic.db import Database

    with migrated_database(args.dsn) as dsn:
        started = time.perf_counter()
        register_bulk(dsn, args.tick_services, prefix="svc-")
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE medic.services")
        conn.close()
        setup_s = time.perf_counter() - started
        db = Database(dsn, 2)
        monitor = idle_monitor(db)
        monitor.tick()  # warm-up (first connection)
        load = wait_for_quiet(max_wait=60)
        durations = []
        for _ in range(args.ticks):
            t0 = time.perf_counter()
            monitor.tick()
            durations.append(time.perf_counter() - t0)
            time.sleep(args.tick_pause)
        db.close()
    durations.sort()
    return {"figure": "monitor_idle_tick", "services": args.tick_services, "ticks": len(durations),
            "p50_ms": pct(durations, 50) * 1e3, "p99_ms": pct(durations, 99) * 1e3,
            "max_ms": durations[-1] * 1e3, "mean_ms": statistics.mean(durations) * 1e3,
            "setup_s": round(setup_s, 1), "load1": load}


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds after the last deadline")
    parser.add_argument("--tick-services", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--tick-pause", type=float, default=0.2)
    parser.add_argument("--only", default="latency,tick")
    parser.add_argument("--env", action="append", default=[], help="extra MEDIC_X=value for medic up")
    return emit_figures(parser.parse_args(), {"latency": bench_latency, "tick": bench_tick})


if __name__ == "__main__":
    sys.exit(main())
