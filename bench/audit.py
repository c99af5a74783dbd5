#!/usr/bin/env python3
"""What the audit log costs, and how fast it answers. One command:

    .venv/bin/python bench/audit.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                   [--calls 2000] [--rounds 3] [--events 10000000]

1. Overhead: a management RPC (routing's UpdateTeam, over gRPC on loopback,
   through Medic's interceptors, against PostgreSQL) called one at a time,
   p50 latency with its audit event written (the product) and with the event
   left out (``routing.team_store._audit`` replaced by a no-op), in alternating
   rounds (which goes first alternates too); the figure is the ratio of the
   medians of the rounds' p50s.
2. Query: ``--events`` audit events over 10,000 services (the table and its
   indexes as migration 014 makes them), then ListAuditEvents over gRPC for one
   random service's history (first page of 50, with its total), p50/p99 of 200
   queries.

A report, not a gate: prints the figures as JSON lines and exits 0.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402

from bench.common import DEFAULT_DSN, load1, pct
from medic.config import Settings
from medic.db import Database
from medic.interceptors import Identity
from medic.server import create_server
from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc, routing_pb2, routing_pb2_grpc
from services.heartbeat import app as heartbeat_app
from services.routing import app as routing_app, team_store
from tests.support.databases import migrated_database

SERVICES = 10_000


class BenchCaller:
    """Every call passes as an API key (so the audit event records a key and a name)."""

    def authorize(self, policy, metadata, peer) -> Identity:
        return Identity(principal="key:benchbench01", scopes=frozenset({"admin"}), name="bench")


def overhead(url: str, calls: int, rounds: int) -> dict:
    settings = Settings(database_url=url)
    db = Database(url, 8)
    server = create_server(routing_app.build(settings, db=db), authorizer=BenchCaller(), port=0, workers=8)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    team_id = stub.CreateTeam(routing_pb2.CreateTeamRequest(name="bench")).team.team_id
    audited = team_store._audit

    def p50(n: int) -> float:
        latencies = []
        for i in range(n):
            started = time.perf_counter()
            stub.UpdateTeam(routing_pb2.UpdateTeamRequest(team_id=team_id, slack_channel_id=f"C{i % 7}"))
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        return pct(latencies, 50) * 1000

    p50(200)  # warm-up: connections, prepared caches
    with_audit, without = [], []
    try:
        for round_ in range(rounds):
            # Alternating which goes first cancels a drift of the machine's load within a round.
            for audit_on in ((True, False) if round_ % 2 == 0 else (False, True)):
                team_store._audit = audited if audit_on else (lambda *args, **kwargs: None)
                (with_audit if audit_on else without).append(p50(calls))
    finally:
        team_store._audit = audited
        channel.close()
        server.stop(1)
        db.close()
    on, off = statistics.median(with_audit), statistics.median(without)
    return {"bench": "audit_overhead", "rpc": "RoutingService/UpdateTeam", "calls_per_round": calls,
            "rounds": rounds, "p50_ms_audited": round(on, 3), "p50_ms_not_audited": round(off, 3),
            "rounds_p50_ms_audited": [round(v, 3) for v in with_audit],
            "rounds_p50_ms_not_audited": [round(v, 3) for v in without],
            "overhead_ratio": round(on / off, 4), "limit_ratio": 1.05}


FILL = """
    INSERT INTO audit_events (at, source, action_type, resource, resource_id, service_id, principal,
                              key_id, key_name, actor, request_id, before, after)
    SELECT now() - (n * interval '1 second'), 'heartbeat',
           (ARRAY['edit', 'mute', 'unmute', 'activate', 'deactivate'])[1 + n %% 5], 'service',
           (n %% %(services)s + 1)::text, n %% %(services)s + 1, 'key:benchbench01', 'benchbench01', 'bench',
           CASE WHEN n %% 3 = 0 THEN 'alice' END, md5(n::text),
           jsonb_build_object('muted', n %% 2 = 0, 'alert_interval_seconds', 60 + n %% 600),
           jsonb_build_object('muted', n %% 2 = 1, 'alert_interval_seconds', 60 + n %% 600)
    FROM generate_series(%(first)s, %(last)s) AS n
"""


def fill(db: Database, events: int) -> float:
    """``events`` rows, indexes built after the load (as a restore would); seconds taken."""
    started = time.perf_counter()
    indexes = db.all("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_events' "
                     "AND indexname <> 'audit_events_pkey'")
    for index in indexes:
        db.execute(f'DROP INDEX "{index["indexname"]}"')
    chunk = 1_000_000
    for first in range(1, events + 1, chunk):
        db.execute(FILL, {"services": SERVICES, "first": first, "last": min(first + chunk - 1, events)})
        print(f"# {min(first + chunk - 1, events):,} events", file=sys.stderr, flush=True)
    for index in indexes:
        db.execute(index["indexdef"])
    db.execute("VACUUM ANALYZE audit_events")
    return time.perf_counter() - started


def query(url: str, events: int, queries: int = 200) -> dict:
    db = Database(url, 4)
    loaded = fill(db, events)
    settings = Settings(database_url=url, monitor_enabled=False)
    server = create_server(heartbeat_app.build(settings, db=db), authorizer=BenchCaller(), port=0, workers=8)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
    rng = random.Random(23)
    latencies, totals = [], []
    try:
        for i in range(queries + 20):
            service_id = rng.randint(1, SERVICES)
            started = time.perf_counter()
            answer = stub.ListAuditEvents(heartbeat_pb2.ListAuditEventsRequest(service_id=service_id))
            elapsed = time.perf_counter() - started
            if i >= 20:  # the first ones warm the cache
                latencies.append(elapsed)
                totals.append(answer.total_count)
        size = db.one("SELECT pg_size_pretty(pg_total_relation_size('audit_events')) AS size")["size"]
    finally:
        channel.close()
        server.stop(1)
        db.close()
    latencies.sort()
    return {"bench": "audit_service_history", "events": events, "services": SERVICES, "table_size": size,
            "load_seconds": round(loaded, 1), "queries": queries, "events_per_service": statistics.median(totals),
            "p50_ms": round(pct(latencies, 50) * 1000, 2), "p99_ms": round(pct(latencies, 99) * 1000, 2),
            "limit_ms": 50, "p99_ratio_to_limit": round(pct(latencies, 99) * 1000 / 50, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--skip-query", action="store_true")
    args = parser.parse_args()
    with migrated_database(args.dsn) as url:
        result = overhead(url, args.calls, args.rounds)
        result["load1"] = round(load1(), 2)
        print(json.dumps(result), flush=True)
    if not args.skip_query:
        with migrated_database(args.dsn) as url:
            result = query(url, args.events)
            result["load1"] = round(load1(), 2)
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
