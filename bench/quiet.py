#!/usr/bin/env python3
"""Quiet hours: the monitor's idle tick among many maintenance windows, and the
cost of deciding whether a notification is sent.

    .venv/bin/python bench/quiet.py [--dsn ...] [--services 1000000] [--windows 10000]
                                    [--recurring 1000] [--ticks 50] [--decisions 20000]
                                    [--keep-database NAME]

tick      a fresh migrated database with --services healthy services (bulk SQL,
          ANALYZEd) and --windows maintenance windows, --recurring of them
          recurring (cron in a time zone), the rest one-off, over every scope
          (service, team, glob, all; some open now). Then `Monitor.tick()` (the
          real class, with its WindowStore) --ticks times: p50/p99/max. Goal:
          <= 10 ms. Beside it, one `SELECT 1` round trip after each pass: an
          idle pass is one round trip, so its tail is that round trip's. A pass that counts services for the state gauges (every 5 s)
          is measured apart: it scans the services table.
decision  the same windows loaded into the monitor's WindowBook (its load time,
          and the first pass over every window, in which each recurring window
          computes its current stretch with cronsim, are reported: both happen
          once per change of the windows), then for --decisions random services:
          which window keeps each quiet now (`WindowBook.open_for`) and
          `medic.quiet.decide_notification`, the first time for a service (its
          scopes matched, globs included) and again (remembered); and routing's
          working-hours check of two targets (`selection.in_hours`).
          Goal: <= 50 us.

Prints one JSON line per figure, with its ratio to the goal (these figures have
no counterpart among the machine limits of ../shared/bench-limits: read them
with the load printed beside them). A report, not a gate.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.common import (DEFAULT_DSN, bench_database, emit, idle_monitor, mark_built, pct,  # noqa: E402
                          register_bulk, wait_for_quiet)

TEAMS = 200
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney")


def insert_windows(dsn: str, services: int, count: int, recurring: int) -> None:
    """``count`` windows over every scope: of the one-off ones, 70 % for one
    service, 15 % for a team, 14 % for a name glob, 1 % for every service (a
    tenth of them open now, the rest in the past or the future); the recurring
    ones nightly or weekly in several zones, for a team or a glob."""
    rng = random.Random(7)
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for n in range(count - recurring):
        roll = rng.random()
        open_now = n % 10 == 0 and roll < 0.99  # no window for every service is open now
        start = now - dt.timedelta(minutes=30) if open_now else now + dt.timedelta(days=rng.randint(-30, 30))
        end = start + dt.timedelta(hours=rng.choice((1, 2, 4)))
        if roll < 0.70:
            scope = ("service", rng.randrange(1, services + 1), None, None)
        elif roll < 0.85:
            scope = ("team", None, f"team-{rng.randrange(TEAMS)}", None)
        elif roll < 0.99:
            scope = ("glob", None, None, f"svc-{rng.randrange(100):02d}*")
        else:
            scope = ("all", None, None, None)
        rows.append((*scope, start, end, None, None, None))
    for n in range(recurring):
        cron = rng.choice(("0 2 * * *", "30 3 * * sun", "0 22 * * 1-5", "0 */6 * * *"))
        scope = ("team", None, f"team-{rng.randrange(TEAMS)}", None) if n % 2 else \
            ("glob", None, None, f"svc-{rng.randrange(1000):03d}*")
        rows.append((*scope, None, None, cron, rng.choice((600, 3600, 7200)), rng.choice(ZONES)))
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    with conn, conn.cursor() as cur:
        from psycopg2.extras import execute_values
        execute_values(cur, """
            INSERT INTO maintenance_windows (scope, service_id, team, name_glob, starts_at, ends_at, cron,
                                             duration_seconds, timezone, reason, created_by)
            VALUES %s""", [(*r, "bench", "bench") for r in rows], page_size=1000)
        cur.execute("UPDATE services SET team = 'team-' || (service_id %% %s)", (TEAMS,))
        cur.execute("UPDATE maintenance_windows_generation SET generation = generation + 1")
    conn.close()


def bench(args) -> list[dict]:
    from medic.db import Database
    from medic.quiet import Quiet, decide_notification
    from services.heartbeat.window_store import WindowStore
    from services.heartbeat.windows import ServiceKey
    from services.routing import selection
    from services.routing.active_hours import parse

    figures = []
    with bench_database(args.dsn, args.keep_database) as (dsn, to_build):
        started = time.perf_counter()
        if to_build:
            # Deadlines a week ahead: nothing falls due while a kept dataset is measured again.
            register_bulk(dsn, args.services, prefix="svc-", deadline_offset_seconds=7 * 86400)
            insert_windows(dsn, args.services, args.windows, args.recurring)
            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("VACUUM ANALYZE medic.services")
                cur.execute("VACUUM ANALYZE medic.maintenance_windows")
            conn.close()
            mark_built(dsn)
        setup_s = time.perf_counter() - started
        db = Database(dsn, 2)
        windows = WindowStore(db)
        monitor = idle_monitor(db, windows=windows)
        gauge_started = time.perf_counter()
        monitor.tick()  # the first pass counts services for the gauges
        gauge_ms = (time.perf_counter() - gauge_started) * 1e3
        load = wait_for_quiet(max_wait=60)
        durations, floor = [], []
        for _ in range(args.ticks):
            t0 = time.perf_counter()
            monitor.tick()
            durations.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            db.one("SELECT 1")  # the floor: one round trip on the same pool, whose tail is the machine's
            floor.append(time.perf_counter() - t0)
            time.sleep(args.tick_pause)
        durations.sort()
        floor.sort()
        figures.append({
            "figure": "monitor_idle_tick_with_windows", "services": args.services, "windows": args.windows,
            "recurring": args.recurring, "ticks": len(durations), "p50_ms": round(pct(durations, 50) * 1e3, 2),
            "p99_ms": round(pct(durations, 99) * 1e3, 2), "max_ms": round(durations[-1] * 1e3, 2),
            "mean_ms": round(statistics.mean(durations) * 1e3, 2), "gauge_pass_ms": round(gauge_ms, 1),
            "select1_p50_ms": round(pct(floor, 50) * 1e3, 2), "select1_p99_ms": round(pct(floor, 99) * 1e3, 2),
            "goal_ms": 10, "p50_to_goal": round(pct(durations, 50) * 1e3 / 10, 2),
            "setup_s": round(setup_s, 1), "load1": load})

        t0 = time.perf_counter()
        book = windows.book()
        load_ms = (time.perf_counter() - t0) * 1e3
        db.close()

    rng = random.Random(11)
    now = dt.datetime.now(dt.timezone.utc)
    keys = [ServiceKey(sid, f"team-{sid % TEAMS}", f"svc-{sid:05d}")
            for sid in rng.sample(range(1, args.services + 1), args.decisions)]

    def decide(key):
        stretch = book.open_for(key, now)
        return decide_notification("trigger", Quiet(window=stretch.window_id if stretch else 0))

    # After a load, each recurring window computes its current stretch once, at
    # its first use; measured here as one pass over every window.
    t0 = time.perf_counter()
    open_now = len(book.open_windows(now))
    first_pass_ms = (time.perf_counter() - t0) * 1e3
    quiet_now = 0
    timings = {"first": [], "again": []}
    for phase in ("first", "again"):
        for key in keys:
            t0 = time.perf_counter()
            notify = decide(key)
            timings[phase].append(time.perf_counter() - t0)
            quiet_now += phase == "first" and not notify.send
    office = parse({"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00",
                    "timezone": "Europe/Berlin"})
    targets = (selection.PlannedTarget(type="slack", target_id=1, active_hours=office),
               selection.PlannedTarget(type="pagerduty", target_id=2))
    hours = []
    for _ in range(args.decisions):
        t0 = time.perf_counter()
        selection.in_hours("trigger", targets, now)
        hours.append(time.perf_counter() - t0)
    for name, values in (("decision_first_for_a_service", timings["first"]),
                         ("decision_remembered", timings["again"]), ("routing_working_hours_2_targets", hours)):
        values.sort()
        figures.append({"figure": name, "windows": args.windows, "decisions": len(values),
                        "p50_us": round(pct(values, 50) * 1e6, 1), "p99_us": round(pct(values, 99) * 1e6, 1),
                        "max_us": round(values[-1] * 1e6, 1), "goal_us": 50,
                        "p50_to_goal": round(pct(values, 50) * 1e6 / 50, 3)})
    figures.append({"figure": "window_book_load", "windows": args.windows, "load_ms": round(load_ms, 1),
                    "first_pass_over_every_window_ms": round(first_pass_ms, 1), "open_now": open_now,
                    "services_quiet_now_of_sample": quiet_now})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--services", type=int, default=1_000_000)
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--recurring", type=int, default=1_000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--tick-pause", type=float, default=0.2)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--keep-database", metavar="NAME",
                        help="build the dataset into this database once and keep it; later runs reuse it "
                             "(the other sizes are then the first run's)")
    args = parser.parse_args()
    for figure in bench(args):
        emit(figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
