#!/usr/bin/env python3
"""Alert to first remediation step, with many alerts at once (issue 24).

    .venv/bin/python bench/remediation.py [--dsn ...] [--alerts 100] [--rounds 3] [--no-limits]
        [--monitor-batch N] [--workers N]

`medic up` against a fresh database; one playbook whose trigger matches every
bench service and whose first step is a webhook to a local receiver; then, per
round, --alerts services (bulk SQL) whose deadline is the same instant, so one
monitor pass opens all their alerts at once. Measured per alert: the first
step's ``started_at`` (committed by the remediation service) minus the alert's
``opened_at`` (committed by the monitor), both from the database; also the
webhook's arrival at the receiver. Goal: p99 <= 500 ms.

The machine's limit, for the ratio: the p99 of a no-op gRPC call on this
machine (../shared/bench-limits/grpc_noop.py, run in the same session); an alert
reaches its first step through two RPCs and a handful of commits.

Prints one JSON line per round and a summary line. A report, not a gate.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from bench.common import DEFAULT_DSN, Medic, emit, machine, pct, run_limit, wait_for_quiet  # noqa: E402
from bench.receivers import Arrivals  # noqa: E402
from tests.support.playbooks import restart_playbook  # noqa: E402

GOAL_P99_S = 0.5


def api(medic: Medic, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        medic.gateway_url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {medic.admin_key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def overdue_together(dsn: str, prefix: str, count: int, in_seconds: float) -> float:
    """``count`` services beating now whose deadlines are all the same instant (their interval
    is that wait: the monitor checks the deadline against the interval since activation);
    returns that instant (epoch seconds)."""
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    with conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, state,
                                     recent_beats, last_heartbeat_at, deadline_at)
               SELECT %s || lpad(n::text, 5, '0'), 'bench', %s, 'up', ARRAY[now()], now(),
                      now() + make_interval(secs => %s)
               FROM generate_series(0, %s - 1) AS n
               RETURNING extract(epoch FROM deadline_at)""", (prefix, int(in_seconds), in_seconds, count))
        deadline = float(cur.fetchone()[0])
    conn.close()
    return deadline


DELAYS = """
    SELECT a.alert_id, extract(epoch FROM a.opened_at) AS opened,
           extract(epoch FROM r.started_at) AS first_step, extract(epoch FROM e.created_at) AS created
    FROM medic.alerts a
    JOIN medic.services s ON s.service_id = a.service_id
    LEFT JOIN medic.playbook_executions e ON e.alert_id = a.alert_id
    LEFT JOIN medic.playbook_step_results r ON r.execution_id = e.execution_id AND r.step_index = 0
    WHERE s.heartbeat_name LIKE %s
"""


def one_round(medic: Medic, receiver: Arrivals, prefix: str, count: int, timeout: float) -> dict:
    load = wait_for_quiet(max_wait=60, quiet=True)
    overdue_at = overdue_together(medic.dsn, prefix, count, 2.0)
    deadline = time.time() + 2.0 + timeout
    rows: list = []
    while time.time() < deadline:
        conn = psycopg2.connect(medic.dsn)
        with conn, conn.cursor() as cur:
            cur.execute(DELAYS, (prefix + "%",))
            rows = cur.fetchall()
        conn.close()
        if len(rows) == count and all(r[2] is not None for r in rows):
            break
        time.sleep(0.5)
    delays = sorted(float(r[2]) - float(r[1]) for r in rows if r[2] is not None)
    arrivals = sorted(receiver.arrived[str(r[0])] - float(r[1]) for r in rows if str(r[0]) in receiver.arrived)
    # Where the time goes: the hand-off and the taking of the event (alert opened ->
    # execution created), then the engine (created -> first step started).
    taken = sorted(float(r[3]) - float(r[1]) for r in rows if r[3] is not None)
    engine = sorted(float(r[2]) - float(r[3]) for r in rows if r[2] is not None and r[3] is not None)
    # From the services' deadline (one instant for all): what a person waits, monitor pass included.
    from_deadline = sorted(float(r[2]) - overdue_at for r in rows if r[2] is not None)
    return {"figure": "alert_to_first_step_started", "alerts": count, "alerts_opened": len(rows),
            "first_steps_started": len(delays), "p50_s": round(pct(delays, 50), 3),
            "p99_s": round(pct(delays, 99), 3), "max_s": round(delays[-1], 3) if delays else None,
            "webhook_arrived_p99_s": round(pct(arrivals, 99), 3) if arrivals else None,
            "opened_to_created_min_s": round(taken[0], 3) if taken else None,
            "opened_to_created_p50_s": round(pct(taken, 50), 3) if taken else None,
            "opened_to_created_p99_s": round(pct(taken, 99), 3) if taken else None,
            "created_to_first_step_p99_s": round(pct(engine, 99), 3) if engine else None,
            "deadline_to_first_step_p99_s": round(pct(from_deadline, 99), 3) if from_deadline else None,
            "goal_p99_s": GOAL_P99_S, "load1": load}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a round waits after the deadline")
    parser.add_argument("--no-limits", action="store_true", help="skip the machine-limit script")
    parser.add_argument("--monitor-batch", type=int, help="MEDIC_MONITOR_BATCH for the run (default: Medic's)")
    parser.add_argument("--workers", type=int, help="MEDIC_REMEDIATION_WORKERS for the run (default: Medic's)")
    args = parser.parse_args()

    receiver = Arrivals(lambda body: str(body.get("alert")), "/remediate")
    results = []
    try:
        env = {"MEDIC_WEBHOOK_ALLOW_PRIVATE": "true"}
        if args.monitor_batch:
            env["MEDIC_MONITOR_BATCH"] = str(args.monitor_batch)
        if args.workers:
            env["MEDIC_REMEDIATION_WORKERS"] = str(args.workers)
        with Medic(args.dsn, env_overrides=env) as medic:
            api(medic, "/v2/playbooks", {"yaml": restart_playbook("bench-remediation", receiver.url, "remed-*")})
            for n in range(args.rounds):
                row = one_round(medic, receiver, f"remed-{n}-", args.alerts, args.timeout)
                row["round"] = n + 1
                emit(row)
                results.append(row)
    finally:
        receiver.close()
    p99s = sorted(r["p99_s"] for r in results)
    summary = {"figure": "alert_to_first_step_started_summary", "alerts_per_round": args.alerts,
               "rounds": len(results), "p99_s_median": p99s[len(p99s) // 2] if p99s else None,
               "p99_s_all": p99s, "goal_p99_s": GOAL_P99_S,
               "meets_goal": bool(p99s) and p99s[len(p99s) // 2] <= GOAL_P99_S, "machine": machine()}
    if not args.no_limits:
        limit = run_limit("grpc_noop.py")
        sync = limit.get("sync", {})
        if "p99" in sync and summary["p99_s_median"] is not None:
            summary["machine_limit_grpc_noop_p99_ms"] = sync["p99"]
            summary["ratio_to_grpc_noop_p99"] = round(summary["p99_s_median"] * 1000 / sync["p99"], 1)
        else:
            summary["machine_limit_error"] = limit.get("error", "no sync p99 in grpc_noop.py's summary")
    emit(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
