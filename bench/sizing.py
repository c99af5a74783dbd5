#!/usr/bin/env python3
"""CPU and memory of every Medic process under a reference load: the figures behind the
Kubernetes resource requests and limits (deploy/kubernetes/base, docs/operations.md).

    .venv/bin/python bench/sizing.py [--dsn ...] [--rate 500] [--seconds 60] [--alerts 500]

`medic up` against a fresh database with the monitor in a process of its own (as the
Kubernetes manifests run it: MEDIC_MONITOR_ENABLED=false for heartbeat, plus
`medic serve monitor`), 1,000 services, alerts routed to a local fake Slack. Phases:

  idle     20 s, nothing sent
  ingest   authenticated POST /heartbeat at about --rate req/s for --seconds (wrk, paced)
  alerts   --alerts services made overdue at once: the monitor opens that many alerts, the
           hand-off, routing and delivery send a TRIGGER each to the fake Slack; then one
           heartbeat each resolves them (a RESOLVE each)

Each process's CPU (utime+stime from /proc, in cores = CPU seconds per second) and RSS are
sampled every second. Prints one JSON line per process and phase: mean and peak cores,
peak RSS in MiB. A report, not a gate.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (Medic, command_line, emit, free_port, parse_wrk,  # noqa: E402
                          register_bulk, wait_for_quiet)
from bench.soak import PACED_LUA, rss_mb  # noqa: E402
from tests.support.receivers import SlackReceiver  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class Sampler:
    """Per-process CPU (cores) and RSS, every second, labelled with the current phase."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.phase = "start"
        self.rows: list[tuple[str, str, float, float]] = []  # phase, process, cores, rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = {name: (time.monotonic(), cpu_seconds(pid)) for name, pid in self.pids.items()}
        while not self._stop.wait(1.0):
            for name, pid in self.pids.items():
                now, cpu = time.monotonic(), cpu_seconds(pid)
                then, before = last[name]
                rss = rss_mb(pid)
                if cpu is None or before is None or rss is None:
                    continue
                self.rows.append((self.phase, name, (cpu - before) / (now - then), rss))
                last[name] = (now, cpu)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> None:
        for phase in dict.fromkeys(p for p, *_ in self.rows):
            for name in self.pids:
                rows = [(c, r) for p, n, c, r in self.rows if p == phase and n == name]
                if not rows:
                    continue
                cores = sorted(c for c, _ in rows)
                emit({"figure": f"sizing_{phase}_{name}", "samples": len(rows),
                      "cores_mean": round(sum(cores) / len(cores), 3),
                      "cores_p95": round(cores[int(0.95 * (len(cores) - 1))], 3),
                      "cores_max": round(cores[-1], 3),
                      "rss_max_mib": round(max(r for _, r in rows), 1)})


def overdue_services(dsn: str, count: int) -> None:
    """``count`` services activated and last heard of (an event too, which the monitor
    re-checks) 61 s ago, with a 60 s interval: overdue now."""
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    with conn, conn.cursor() as cur:
        cur.execute(
            """WITH late AS (
                   INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, state,
                                         recent_beats, last_heartbeat_at, deadline_at, activated_at)
                   SELECT 'late-' || lpad(n::text, 5, '0'), 'bench', 60, 'up',
                          ARRAY[now() - interval '61 seconds'], now() - interval '61 seconds',
                          now() - interval '1 second', now() - interval '61 seconds'
                   FROM generate_series(0, %s - 1) AS n
                   RETURNING service_id)
               INSERT INTO heartbeat_events (service_id, time, status)
               SELECT service_id, now() - interval '61 seconds', 'UP' FROM late""", (count,))
    conn.close()


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--rate", type=int, default=500, help="target POST /heartbeat per second")
    parser.add_argument("--seconds", type=int, default=60, help="length of the ingest phase")
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--services", type=int, default=1000)
    args = parser.parse_args()

    slack = SlackReceiver().start()
    env = {"MEDIC_MONITOR_ENABLED": "false", "MEDIC_SLACK_API_URL": slack.url,
           "MEDIC_SLACK_TOKEN": "xoxb-bench", "MEDIC_SLACK_DEFAULT_CHANNEL": "C0BENCH",
           "MEDIC_WEBHOOK_ALLOW_PRIVATE": "true"}
    monitor = None
    try:
        with Medic(args.dsn, env_overrides=env) as medic:
            register_bulk(medic.dsn, args.services)
            monitor_env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
            monitor_env.update(env, MEDIC_DATABASE_URL=medic.dsn, MEDIC_DATA_DIR=medic.data_dir,
                               MEDIC_LOG_LEVEL="WARNING", MEDIC_MONITOR_ENABLED="true",
                               MEDIC_MONITOR_PORT=str(free_port()),
                               MEDIC_MONITOR_METRICS_PORT=str(free_port()),
                               MEDIC_AUTH_PORT=str(medic.ports["auth"]),
                               MEDIC_ROUTING_PORT=str(medic.ports["routing"]),
                               MEDIC_SERVICE_TOKEN=(Path(medic.data_dir) / "service.token").read_text().strip())
            monitor = subprocess.Popen([sys.executable, "-m", "medic_cli", "serve", "monitor"],
                                       env=monitor_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pids = {**medic.children(), "monitor": monitor.pid}
            time.sleep(5)  # the monitor's start
            load = wait_for_quiet(max_wait=60)
            with Sampler(pids) as sampler:
                sampler.phase = "idle"
                time.sleep(20)

                sampler.phase = "ingest"
                delay_ms = max(0, int(32 * 1000 / args.rate))
                with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                    script.write(PACED_LUA % {"delay_ms": delay_ms, "services": args.services,
                                              "key": medic.admin_key})
                try:
                    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{args.seconds}s", "--latency",
                                          "-s", script.name, medic.gateway_url + "/heartbeat"],
                                         capture_output=True, text=True).stdout
                finally:
                    os.unlink(script.name)
                emit({"figure": "sizing_ingest_load", "target_rps": args.rate, "load1": load,
                      **parse_wrk(out)})

                sampler.phase = "alerts"
                overdue_services(medic.dsn, args.alerts)
                triggered = wait_for(lambda: len(slack.requests) >= args.alerts, 300, "the TRIGGERs")
                http = requests.Session()
                http.headers["Authorization"] = f"Bearer {medic.admin_key}"
                for n in range(args.alerts):
                    http.post(medic.gateway_url + "/heartbeat",
                              json={"heartbeat_name": f"late-{n:05d}", "status": "UP"}).raise_for_status()
                resolved = wait_for(lambda: len(slack.requests) >= 2 * args.alerts, 300, "the RESOLVEs")
                emit({"figure": "sizing_alerts_load", "alerts": args.alerts,
                      "triggers_delivered_s": round(triggered, 1), "resolves_delivered_s": round(resolved, 1)})
            sampler.report()
    finally:
        if monitor is not None:
            monitor.terminate()
            monitor.wait(30)
        slack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
