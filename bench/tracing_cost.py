#!/usr/bin/env python3
"""What tracing costs per RPC, in CPU: tracing off, on with 1 % sampled, on with everything
sampled.

    .venv/bin/python bench/tracing_cost.py [--calls 5000] [--rounds 3]

Each variant runs in a process of its own (tracing is set up once per process, from the
environment, as in Medic): a real gRPC server with Medic's interceptors (and, when tracing
is on, the OpenTelemetry gRPC instrumentation's) serving a `RecordHeartbeat` that answers
at once, and a client on a Medic service channel calling it --calls times, one at a time.
The spans go over OTLP/HTTP to a local collector stand-in (tests/support/receivers.py OtlpReceiver). The
figure is the process's CPU time (client and server together) per RPC, which the load of
other work on the machine disturbs less than wall-clock throughput. Variants alternate,
--rounds times. Prints one JSON line per run and a median per variant. A report, not a gate.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.receivers import OtlpReceiver  # noqa: E402

VARIANTS = {
    "off": {},
    "on_1pct": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "on_all": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}

ONE_RUN = """
    import json, sys, time
    from medic import logs
    from medic.interceptors import service_channel
    from medic.server import Component, create_server
    from medic.v1 import heartbeat_pb2 as pb, heartbeat_pb2_grpc
    from tests.support.authorizers import AllowAll

    class Answering(heartbeat_pb2_grpc.HeartbeatServiceServicer):
        def RecordHeartbeat(self, request, context):
            return pb.RecordHeartbeatResponse()

    logs.setup("bench", "WARNING")
    name = pb.DESCRIPTOR.services_by_name["HeartbeatService"].full_name
    server = create_server(Component(name="bench", servicers=[
        (heartbeat_pb2_grpc.add_HeartbeatServiceServicer_to_server, Answering(), name)]), authorizer=AllowAll())
    stub = heartbeat_pb2_grpc.HeartbeatServiceStub(service_channel(f"127.0.0.1:{server.port}"))
    request = pb.RecordHeartbeatRequest(heartbeat_name="bench", status="UP")
    for _ in range(500):  # warm-up
        stub.RecordHeartbeat(request, timeout=5)
    calls = int(sys.argv[1])
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        stub.RecordHeartbeat(request, timeout=5)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"cpu_us_per_rpc": round(cpu / calls * 1e6, 1),
                      "wall_us_per_rpc": round(wall / calls * 1e6, 1)}))
    server.stop(0)
    from medic import tracing
    tracing.shutdown()
"""


def run(variant: str, calls: int, collector: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if variant != "off":
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=collector, **VARIANTS[variant])
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(ONE_RUN), str(calls)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with OtlpReceiver() as collector:
        for _ in range(args.rounds):
            for variant in VARIANTS:
                row = run(variant, args.calls, collector.url)
                results[variant].append(row)
                print(json.dumps({"figure": f"tracing_{variant}", "load1": round(os.getloadavg()[0], 2), **row}),
                      flush=True)
        spans = len(collector.spans())
    off = statistics.median(r["cpu_us_per_rpc"] for r in results["off"])
    for variant, rows in results.items():
        cpu = statistics.median(r["cpu_us_per_rpc"] for r in rows)
        print(json.dumps({"figure": f"tracing_{variant}_median", "cpu_us_per_rpc": cpu,
                          "vs_off_us": round(cpu - off, 1), "vs_off_pct": round((cpu / off - 1) * 100, 1)}))
    print(json.dumps({"figure": "tracing_spans_received", "spans": spans}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
