#!/usr/bin/env python3
"""Scheduled jobs at scale (issue 21): the monitor's idle tick, and run statistics.

    .venv/bin/python bench/jobs.py [--dsn ...] [--services 1000000] [--open-runs 10000]
                                   [--runs 1000000] [--ticks 50] [--calls 200] [--only tick,stats]
                                   [--keep-database NAME]

tick   a fresh migrated database with --services services (bulk SQL, all healthy), half of
       them on cron schedules in several time zones, and --open-runs open runs of services
       with max_duration_seconds, none due yet; ANALYZEd. Then `Monitor.tick()` (the real
       class) --ticks times: p50/p99/max. Goal: <= 10 ms. Beside it, one `SELECT 1` round
       trip on the same pool, the floor any pass pays per statement.
stats  one service with --runs completed runs (and 1 in 20 failed), ANALYZEd; then
       GetJobStats over gRPC (the real heartbeat servicer in this process) --calls times:
       p50/p99. Goal: <= 20 ms. Beside it, the no-op gRPC server of
       ../shared/bench-limits/grpc_noop.py (sync, 32 in flight) run in the same session:
       its RPC/s, p50, and time per call at that throughput.

Prints one JSON line per figure. A report, not a gate.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.common import (bench_database, command_line, emit_figures, idle_monitor,  # noqa: E402
                          mark_built, pct, run_limit, wait_for_quiet)
from tests.support.databases import migrated_database  # noqa: E402

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
SCHEDULES = ["*/5 * * * *", "30 2 * * *", "0 9 * * 1-5", "0 23 L * *", "15 */6 * * *"]


def sql(dsn: str, statement: str, params=None, autocommit: bool = False) -> None:
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    conn.autocommit = autocommit
    with conn.cursor() as cur:
        cur.execute(statement, params)
    if not autocommit:
        conn.commit()
    conn.close()


def build_tick_dataset(dsn: str, args) -> None:
    """Healthy services: deadlines a week or more ahead (nothing falls due while a kept
    dataset is measured again); every second one on a schedule. Open runs, started
    within the last hour, each due to overrun a day or more from now."""
    sql(dsn, """
        INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, state, recent_beats,
                              last_heartbeat_at, deadline_at, schedule, timezone, max_duration_seconds)
        SELECT 'job-' || lpad(n::text, 7, '0'), 'bench', 3600, 'up', ARRAY[now()], now(),
               now() + make_interval(secs => 7 * 86400 + n %% 86400),
               CASE WHEN n %% 2 = 0 THEN (%(schedules)s::text[])[1 + n / 2 %% 5] END,
               (%(zones)s::text[])[1 + n %% 5],
               CASE WHEN n < %(open_runs)s THEN 7200 END
        FROM generate_series(0, %(count)s - 1) AS n""",
        {"schedules": SCHEDULES, "zones": ZONES, "open_runs": args.open_runs, "count": args.services})
    sql(dsn, """
        INSERT INTO job_runs (service_id, run_id, status, started_at, overdue_at)
        SELECT service_id, 'run-' || service_id, 'running', now() - interval '1 hour' * random(),
               now() + interval '1 day' + interval '1 hour' * random()
        FROM services WHERE max_duration_seconds IS NOT NULL""")
    sql(dsn, "VACUUM ANALYZE medic.services", autocommit=True)
    sql(dsn, "VACUUM ANALYZE medic.job_runs", autocommit=True)
    mark_built(dsn)


def bench_tick(args) -> dict:
    from medic.db import Database

    with bench_database(args.dsn, args.keep_database) as (dsn, to_build):
        started = time.perf_counter()
        if to_build:
            build_tick_dataset(dsn, args)
        else:  # a kept dataset: its open runs made due a day from now again
            sql(dsn, "UPDATE job_runs SET overdue_at = now() + interval '1 day' + interval '1 hour' * random()"
                     " WHERE status = 'running'")
        setup_s = time.perf_counter() - started
        db = Database(dsn, 2)
        monitor = idle_monitor(db)
        monitor.tick()  # warm-up (first connections)
        load = wait_for_quiet(max_wait=60)
        durations, floor = [], []
        for _ in range(args.ticks):
            t0 = time.perf_counter()
            changes = monitor.tick()
            durations.append(time.perf_counter() - t0)
            assert not changes.opened, "an idle tick opened alerts: the setup is not idle"
            t0 = time.perf_counter()
            db.one("SELECT 1")
            floor.append(time.perf_counter() - t0)
            time.sleep(args.tick_pause)
        db.close()
    durations.sort()
    floor.sort()
    p50 = pct(durations, 50) * 1e3
    return {"figure": "jobs_monitor_idle_tick", "services": args.services, "scheduled": args.services // 2,
            "open_runs": args.open_runs, "ticks": len(durations), "p50_ms": round(p50, 3),
            "p99_ms": round(pct(durations, 99) * 1e3, 3), "max_ms": round(durations[-1] * 1e3, 3),
            "mean_ms": round(statistics.mean(durations) * 1e3, 3), "goal_ms": 10,
            "select1_p50_ms": round(pct(floor, 50) * 1e3, 3), "select1_p99_ms": round(pct(floor, 99) * 1e3, 3),
            "ratio_to_select1": round(p50 / (pct(floor, 50) * 1e3), 1),
            "setup_s": round(setup_s, 1), "load1": load}


def bench_stats(args) -> dict:
    import grpc

    from medic.config import Settings
    from medic.db import Database
    from medic.server import create_server
    from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc
    from services.heartbeat import app as heartbeat_app
    from tests.support.authorizers import AllowAll

    with migrated_database(args.dsn) as dsn:
        started = time.perf_counter()
        sql(dsn, "INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, deadline_at)"
                 " VALUES ('nightly', 'bench', 86400, now() + interval '1 day')")
        sql(dsn, """
            INSERT INTO job_runs (service_id, run_id, status, started_at, completed_at, duration_ms)
            SELECT 1, 'run-' || n, CASE WHEN n %% 20 = 0 THEN 'failed' ELSE 'completed' END,
                   t, t + make_interval(secs => d / 1000.0), d
            FROM generate_series(1, %(runs)s) AS n,
                 LATERAL (SELECT now() - make_interval(mins => %(runs)s - n) AS t,
                                 (1000 + (n::bigint * 7919) %% 600000) AS d) AS x""", {"runs": args.runs})
        sql(dsn, "VACUUM ANALYZE medic.job_runs", autocommit=True)
        setup_s = time.perf_counter() - started
        db = Database(dsn, 4)
        server = create_server(heartbeat_app.build(Settings(database_url=dsn, monitor_enabled=False), db=db),
                               port=0, workers=4, authorizer=AllowAll())
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
        request = heartbeat_pb2.GetJobStatsRequest(heartbeat_name="nightly")
        answer = stub.GetJobStats(request)  # warm-up
        load = wait_for_quiet(max_wait=60)
        durations = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            stub.GetJobStats(request)
            durations.append(time.perf_counter() - t0)
        channel.close()
        server.stop(grace=1)
        db.close()
    durations.sort()
    p50 = pct(durations, 50) * 1e3
    noop = run_limit("grpc_noop.py", "--variant", "sync", "--runs", "1")
    noop_p50 = (noop.get("sync") or {}).get("p50")  # its p50 with 32 calls in flight
    noop_rps = (noop.get("sync") or {}).get("RPC/s")
    return {"figure": "jobs_stats_rpc", "runs": args.runs, "calls": len(durations), "p50_ms": round(p50, 3),
            "p99_ms": round(pct(durations, 99) * 1e3, 3), "max_ms": round(durations[-1] * 1e3, 3),
            "goal_ms": 20, "run_count": answer.run_count, "p95_duration_ms": answer.p95_duration_ms,
            # A no-op server's time per call at its throughput (32 in flight, both cores) is the
            # least any RPC costs here; the stats call is measured one at a time.
            "grpc_noop_rps": noop_rps, "grpc_noop_p50_ms": noop_p50,
            "grpc_noop_ms_per_call": round(1000 / noop_rps, 3) if noop_rps else None,
            "setup_s": round(setup_s, 1), "load1": load}


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--services", type=int, default=1_000_000)
    parser.add_argument("--open-runs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--tick-pause", type=float, default=0.2)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--only", default="tick,stats")
    parser.add_argument("--keep-database", metavar="NAME",
                        help="tick: build its dataset into this database once and keep it; later runs reuse "
                             "it (the other sizes are then the first run's)")
    return emit_figures(parser.parse_args(), {"tick": bench_tick, "stats": bench_stats})


if __name__ == "__main__":
    sys.exit(main())
