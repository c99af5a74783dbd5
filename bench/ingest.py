#!/usr/bin/env python3
"""Heartbeat ingest, end to end, on this machine.

    .venv/bin/python bench/ingest.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--services 1000] [--duration 10] [--runs 1]

Starts Medic with `medic up` on free ports against a fresh database on the given
server (default: the local PostgreSQL at 127.0.0.1:5432, else the embedded one),
registers N services, then measures, one after another:

  http   legacy `POST /heartbeat` through the gateway, wrk -t2 -c32 (needs `wrk`)
  grpc   `RecordHeartbeat` one at a time, 32 in flight (grpc.aio client, like
         ../shared/bench-limits/grpc_noop.py)
  batch  `RecordHeartbeats` with 500 heartbeats per call, 4 in flight

Prints one JSON line per measurement and a table. It is a report, not a gate.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from medic.v1 import heartbeat_pb2 as pb, heartbeat_pb2_grpc  # noqa: E402

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"heartbeat_name": "svc-%%05d", "status": "UP"}', counter %% %d)
  return wrk.format("POST", "/heartbeat", {["Content-Type"] = "application/json"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def fresh_database(server_dsn: str) -> tuple[str, str]:
    name = f"medic_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    parts = urlsplit(server_dsn)
    return name, urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def drop_database(server_dsn: str, name: str) -> None:
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def start_medic(dsn: str, data_dir: str) -> tuple[subprocess.Popen, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    ports = {"gateway": free_port(), "heartbeat": free_port()}
    env.update({"MEDIC_DATABASE_URL": dsn, "MEDIC_DATA_DIR": data_dir, "MEDIC_LOG_LEVEL": "WARNING",
                "MEDIC_GATEWAY_PORT": str(ports["gateway"]), "MEDIC_HEARTBEAT_PORT": str(ports["heartbeat"]),
                "MEDIC_HEARTBEAT_METRICS_PORT": str(free_port()), "MEDIC_AUTH_PORT": str(free_port()),
                "MEDIC_ROUTING_PORT": str(free_port()), "MEDIC_DELIVERY_PORT": str(free_port()),
                "MEDIC_AUTH_METRICS_PORT": str(free_port()), "MEDIC_ROUTING_METRICS_PORT": str(free_port()),
                "MEDIC_DELIVERY_METRICS_PORT": str(free_port())})
    process = subprocess.Popen([sys.executable, "-m", "medic.cli", "up"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    for line in process.stdout:
        if "Press Ctrl-C to stop." in line:
            break
    else:
        raise RuntimeError("medic up did not start")
    return process, ports


def register(target: str, count: int) -> None:
    import grpc

    with grpc.insecure_channel(target) as channel:
        stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
        for n in range(count):
            stub.RegisterService(pb.RegisterServiceRequest(
                heartbeat_name=f"svc-{n:05d}", service_name="bench", alert_interval_seconds=3600))


def bench_http(port: int, services: int, duration: int) -> dict:
    if not shutil.which("wrk"):
        return {"figure": "http", "error": "wrk not installed (apt-get install wrk)"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % services)
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", script.name,
                          f"http://127.0.0.1:{port}/heartbeat"], capture_output=True, text=True).stdout
    os.unlink(script.name)

    def latency(label):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"figure": "http POST /heartbeat (c=32)", "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency(50), "p99_ms": latency(99), "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


async def _grpc_load(target: str, services: int, duration: float, concurrency: int, batch: int) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
        latencies, state, counter = [], {"measure": False, "stop": False}, [0]
        sent = [0]

        def next_name():
            counter[0] += 1
            return f"svc-{counter[0] % services:05d}"

        async def worker():
            while not state["stop"]:
                started = time.perf_counter()
                if batch == 1:
                    await stub.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name=next_name(), status="UP"))
                else:
                    await stub.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=[
                        pb.RecordHeartbeatRequest(heartbeat_name=next_name(), status="UP") for _ in range(batch)]))
                if state["measure"]:
                    latencies.append(time.perf_counter() - started)
                    sent[0] += batch

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(2)
        state["measure"] = True
        t0 = time.perf_counter()
        await asyncio.sleep(duration)
        state["measure"] = False
        elapsed = time.perf_counter() - t0
        state["stop"] = True
        await asyncio.gather(*tasks)
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "heartbeats_per_s": sent[0] / elapsed,
            "p50_ms": pct(latencies, 50) * 1e3, "p99_ms": pct(latencies, 99) * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()

    name, dsn = fresh_database(args.dsn)
    data_dir = tempfile.mkdtemp(prefix="medic-bench-")
    process, ports = start_medic(dsn, data_dir)
    rows = []
    try:
        target = f"127.0.0.1:{ports['heartbeat']}"
        register(target, args.services)
        rows.append(bench_http(ports["gateway"], args.services, args.duration))
        grpc_one = asyncio.run(_grpc_load(target, args.services, args.duration, 32, 1))
        rows.append({"figure": "grpc RecordHeartbeat (32 in flight)", **grpc_one})
        grpc_batch = asyncio.run(_grpc_load(target, args.services, args.duration, 4, 500))
        rows.append({"figure": "grpc RecordHeartbeats x500 (4 in flight)", **grpc_batch})
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
        drop_database(args.dsn, name)
        shutil.rmtree(data_dir, ignore_errors=True)
    for row in rows:
        print(json.dumps(row))
    print(f"\n{'figure':<44} {'req/s':>10} {'hb/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        if "error" in row:
            print(f"{row['figure']:<44} {row['error']}")
            continue
        print(f"{row['figure']:<44} {row['rps']:>10.0f} {row.get('heartbeats_per_s', row['rps']):>10.0f} "
              f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
