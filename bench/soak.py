#!/usr/bin/env python3
"""Memory soak (goal 5 of issue 8): RSS of every Medic process under steady load.

    .venv/bin/python bench/soak.py [--dsn ...] [--minutes 10] [--rate 2500] [--sample 10]

`medic up` against a fresh database, 1,000 services (bulk SQL), then authenticated
`POST /heartbeat` through the gateway for --minutes at about --rate req/s (50 % of
goal 1's 5,000; wrk, 32 connections, each pausing 32/rate s between requests with
wrk's Lua `delay()`, so the achieved rate is a little lower, and lower still when
Medic cannot keep up: it is reported). The RSS of each `medic serve` process
(and of the gateway's worker processes, if any) is sampled every --sample s.
Growth = RSS at the end / RSS after the warm-up (the first 10 % of the run, at
least one sample) - 1. Goal: < 10 % for every process.

Prints one JSON line per process and one for the load. A report, not a gate.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Medic, command_line, emit, parse_wrk, register_bulk, wait_for_quiet  # noqa: E402

PACED_LUA = """
local threads = 0
function setup(thread)
  thread:set("counter", threads * 500)
  threads = threads + 1
end
function delay()
  return %(delay_ms)d
end
request = function()
  counter = counter + 1
  local body = string.format('{"heartbeat_name": "svc-%%05d", "status": "UP"}', counter %% %(services)d)
  return wrk.format("POST", "/heartbeat", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer %(key)s"}, body)
end
"""


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(medic: Medic) -> dict[str, int]:
    """Every `medic serve` process, plus the gateway's worker processes."""
    import psutil

    found = medic.children()
    gateway = found.get("gateway")
    if gateway:
        for n, child in enumerate(psutil.Process(gateway).children(recursive=True), start=1):
            found[f"gateway-worker-{n}"] = child.pid
    return found


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=2500, help="target req/s (50 %% of goal 1)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--env", action="append", default=[], help="extra MEDIC_X=value for medic up")
    args = parser.parse_args()
    duration = int(args.minutes * 60)
    delay_ms = max(0, int(args.connections * 1000 / args.rate))
    with Medic(args.dsn, env_overrides=dict(kv.split("=", 1) for kv in args.env)) as medic:
        register_bulk(medic.dsn, args.services)
        pids = processes(medic)
        load = wait_for_quiet(max_wait=60)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
        stop = threading.Event()

        def sampler():
            started = time.monotonic()
            while True:
                for name, pid in pids.items():
                    value = rss_mb(pid)
                    if value is not None:
                        samples[name].append((time.monotonic() - started, value))
                if stop.wait(args.sample):
                    return

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(PACED_LUA % {"delay_ms": delay_ms, "services": args.services, "key": medic.admin_key})
        try:
            out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{duration}s", "--latency",
                                  "-s", script.name, medic.gateway_url + "/heartbeat"],
                                 capture_output=True, text=True).stdout
        finally:
            os.unlink(script.name)
            stop.set()
            thread.join()
        emit({"figure": "soak_load", "minutes": args.minutes, "target_rps": args.rate, "load1": load,
              **parse_wrk(out)})
    worst = 0.0
    for name, points in samples.items():
        if len(points) < 2:
            continue
        warm = max(1, len(points) // 10)
        base = points[warm - 1][1]
        end = points[-1][1]
        growth = (end / base - 1) * 100
        worst = max(worst, growth)
        emit({"figure": f"soak_rss_{name}", "baseline_mb": round(base, 1), "end_mb": round(end, 1),
              "max_mb": round(max(v for _, v in points), 1), "growth_pct": round(growth, 2),
              "samples": len(points)})
    emit({"figure": "soak_rss_worst_growth_pct", "value": round(worst, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
