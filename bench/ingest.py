#!/usr/bin/env python3
"""Heartbeat ingest, end to end, on this machine (goals 1 and 2 of issue 8).

    .venv/bin/python bench/ingest.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--services 1000] [--duration 10] [--no-limits] [--redis]

Starts Medic with `medic up` on free ports against a fresh database (dropped
after), bulk-registers N services, and measures, one after another, always
with the bootstrap admin key (rate limits set so high that the limiter counts
every request but refuses none):

  http   legacy `POST /heartbeat` through the gateway, wrk -t2 -c32
  grpc   `RecordHeartbeat` one at a time, 32 in flight (grpc.aio client, like
         ../shared/bench-limits/grpc_noop.py), straight to the heartbeat service
  batch  `RecordHeartbeats` with 500 heartbeats per call, 4 in flight

then (unless --no-limits) the no-op grpcio figure of the same session
(grpc_noop.py --variant sync --runs 1), so that RecordHeartbeat appears as a
ratio of it. --redis counts rate limits in Redis (127.0.0.1:6379) instead of
in-process. Prints one JSON line per figure and a table. A report, not a gate.
"""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (DEFAULT_REDIS, Medic, command_line, emit, pct, register_bulk,  # noqa: E402
                          run_limit, wait_for_quiet, wrk_heartbeats)
from medic.v1 import heartbeat_pb2 as pb, heartbeat_pb2_grpc  # noqa: E402


async def grpc_load(target: str, metadata, services: int, duration: float, concurrency: int,
                    batch: int) -> dict:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
        latencies, state, counter, sent = [], {"measure": False, "stop": False}, [0], [0]

        def next_name():
            counter[0] += 1
            return f"svc-{counter[0] % services:05d}"

        async def worker():
            while not state["stop"]:
                started = time.perf_counter()
                if batch == 1:
                    await stub.RecordHeartbeat(
                        pb.RecordHeartbeatRequest(heartbeat_name=next_name(), status="UP"), metadata=metadata)
                else:
                    await stub.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=[
                        pb.RecordHeartbeatRequest(heartbeat_name=next_name(), status="UP")
                        for _ in range(batch)]), metadata=metadata)
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


def run(args) -> list[dict]:
    env = {"MEDIC_REDIS_URL": DEFAULT_REDIS} if args.redis else {}
    env.update(dict(kv.split("=", 1) for kv in args.env))
    rows = []
    with Medic(args.dsn, env_overrides=env) as medic:
        register_bulk(medic.dsn, args.services)
        if "http" in args.only:
            wrk_heartbeats(medic.gateway_url, services=args.services, duration=2, key=medic.admin_key)  # warm-up
            load = wait_for_quiet()
            rows.append({"figure": "http_post_heartbeat_c32", "load1": load,
                         **wrk_heartbeats(medic.gateway_url, services=args.services,
                                          duration=args.duration, key=medic.admin_key)})
            emit(rows[-1])
        if "grpc" in args.only:
            load = wait_for_quiet()
            rows.append({"figure": "grpc_record_heartbeat_c32", "load1": load, **asyncio.run(grpc_load(
                medic.grpc_target, medic.auth_metadata, args.services, args.duration, 32, 1))})
            emit(rows[-1])
        if "batch" in args.only:
            load = wait_for_quiet()
            rows.append({"figure": "grpc_record_heartbeats_x500_c4", "load1": load, **asyncio.run(grpc_load(
                medic.grpc_target, medic.auth_metadata, args.services, args.duration, 4, 500))})
            emit(rows[-1])
    if args.limits and "grpc" in args.only:
        wait_for_quiet()
        noop = run_limit("grpc_noop.py", "--variant", "sync", "--runs", "1",
                         "--duration", str(args.duration))
        if "sync" in noop:
            rows.append({"figure": "limit_grpc_noop_sync_c32", "rps": noop["sync"].get("RPC/s"),
                         "p50_ms": noop["sync"].get("p50"), "p99_ms": noop["sync"].get("p99")})
        else:
            rows.append({"figure": "limit_grpc_noop_sync_c32", "error": noop.get("error", "?")})
        emit(rows[-1])
    return rows


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--only", default="http,grpc,batch")
    parser.add_argument("--no-limits", dest="limits", action="store_false",
                        help="skip the no-op grpcio run of the same session")
    parser.add_argument("--redis", action="store_true", help="rate limits counted in Redis")
    parser.add_argument("--env", action="append", default=[], help="extra MEDIC_X=value for medic up")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    rows = run(args)
    print(f"\n{'figure':<34} {'req/s':>9} {'hb/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'load1':>6}")
    for row in rows:
        if "error" in row:
            print(f"{row['figure']:<34} {row['error']}")
            continue
        print(f"{row['figure']:<34} {row['rps']:>9.0f} {row.get('heartbeats_per_s', row['rps']):>9.0f} "
              f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row.get('load1', float('nan')):>6}")
    grpc_row = next((r for r in rows if r["figure"] == "grpc_record_heartbeat_c32"), None)
    noop_row = next((r for r in rows if r["figure"] == "limit_grpc_noop_sync_c32" and "rps" in r), None)
    if grpc_row and noop_row and noop_row["rps"]:
        print(f"RecordHeartbeat / no-op grpcio = {grpc_row['rps'] / noop_row['rps']:.2f} (goal >= 0.6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
