#!/usr/bin/env python3
"""What the audit log costs, and how fast it answers. One command:

    .venv/bin/python bench/audit.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                   [--calls 3000] [--events 10000000] [--skip-query]

1. Overhead: management RPCs over gRPC on loopback, through Medic's
   interceptors, against PostgreSQL, called one at a time, with their audit
   event written (the product) and with the event left out, the two
   *interleaved call by call* (each pair in a random order), so that the
   machine's load, which drifts by more than the cost measured, weighs on both
   alike. The figure is the ratio of the two p50s (for UpdateTeam, the audited
   variant is also run twice, the ratio of those two p50s, ``a_a_ratio``,
   showing the noise).
   - routing's ``UpdateTeam``: left out, the change is the plain
     ``UPDATE ... RETURNING`` it would be without an event (the product's
     statement also keeps the team as it was and writes the event from it,
     ``team_store._update_statement``);
   - heartbeat's ``UpdateService`` (the interval changes on every call), with
     routing running as in production (the snapshot asks it for the service's
     targets): left out, ``history.record`` does nothing. Also reported: the
     RPC with none of the change history (no event, no snapshot, no question
     to routing), for what snapshots cost on top.
2. Query: ``--events`` audit events over 10,000 services (the table and its
   indexes as the migrations make them; 1 event in 3 by an X-Actor ``alice``),
   then, over gRPC (ListAuditEvents, first page of 50 with its exact total),
   p50/p99 of 200 queries each: one random service's history; one actor's
   events (``alice`` and a key name); the unfiltered first page.

A report, not a gate: prints the figures as JSON lines and exits 0.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402
from google.protobuf import struct_pb2  # noqa: E402

from bench.common import DEFAULT_DSN, load1, pct
from medic.config import Settings
from medic.db import Database, Prepared, set_clause
from medic.interceptors import Identity
from medic.server import create_server
from medic.v1 import delivery_pb2, heartbeat_pb2, heartbeat_pb2_grpc, routing_pb2, routing_pb2_grpc
from services.heartbeat import app as heartbeat_app, history, snapshots
from services.heartbeat.audit_log import AuditLog
from services.heartbeat.servicer import HeartbeatServicer
from services.routing import app as routing_app, team_store
from tests.support.databases import migrated_database

SERVICES = 10_000
# Who wrote the bench's events: every one through one of KEYS API keys, one in
# three with an X-Actor, one of PEOPLE people.
KEYS = 50
PEOPLE = 500
# Events written since retention's last pass (counted, not tallied yet): an hour
# of a busy log.
UNSEALED = 10_000


class BenchCaller:
    """Every call passes as an API key (so the audit event records a key and a name)."""

    def authorize(self, policy, metadata, peer) -> Identity:
        return Identity(principal="key:benchbench01", scopes=frozenset({"admin"}), name="bench")


def interleaved(variants: dict[str, Callable[[bool], None]], call: Callable[[int], None], calls: int,
                rng: random.Random) -> dict[str, float]:
    """p50 (ms) of ``call`` under each variant, the variants taking turns call
    by call in a random order (``variants[name](True)`` switches one on,
    ``(False)`` back off)."""
    names = list(variants)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for i in range(calls):
        rng.shuffle(names)
        for name in names:
            variants[name](True)
            try:
                started = time.perf_counter()
                call(i)
                latencies[name].append(time.perf_counter() - started)
            finally:
                variants[name](False)
    return {name: round(statistics.median(values) * 1000, 3) for name, values in latencies.items()}


def _overhead(rpc: str, variants: dict[str, Callable[[bool], None]], call: Callable[[int], None], calls: int,
              rng: random.Random) -> tuple[dict, dict[str, float]]:
    """The figure of one RPC (its ``audited`` variant against ``not_audited``),
    after a warm-up (connections, prepared statements); and every variant's p50."""
    interleaved(variants, call, 200, rng)
    p50 = interleaved(variants, call, calls, rng)
    return {"bench": "audit_overhead", "rpc": rpc, "calls": calls, "p50_ms_audited": p50["audited"],
            "p50_ms_not_audited": p50["not_audited"],
            "overhead_ratio": round(p50["audited"] / p50["not_audited"], 4), "limit_ratio": 1.05}, p50


def _plain_update_team(columns: tuple[str, ...]) -> Prepared:
    """UpdateTeam's statement without its event: what it would be unaudited."""
    return Prepared("bench_update_team_" + "_".join(columns),
                    f"UPDATE teams SET {set_clause(columns, team_store.TEAM_FIELDS)}, updated_at = now()"
                    f" WHERE team_id = %(team_id)s RETURNING {team_store.TEAM_COLUMNS}",
                    [("team_id", "bigint"), *((c, "text") for c in columns)])


def overhead(url: str, calls: int) -> list[dict]:
    settings = Settings(database_url=url)
    db = Database(url, 8)
    rng = random.Random(23)
    routing = create_server(routing_app.build(settings, db=db), authorizer=BenchCaller(), port=0, workers=8)
    hb_settings = Settings(database_url=url, monitor_enabled=False, routing_target=f"127.0.0.1:{routing.port}")
    heartbeat = create_server(heartbeat_app.build(hb_settings, db=db), authorizer=BenchCaller(), port=0, workers=8)
    routing_channel = grpc.insecure_channel(f"127.0.0.1:{routing.port}")
    heartbeat_channel = grpc.insecure_channel(f"127.0.0.1:{heartbeat.port}")
    teams = routing_pb2_grpc.RoutingServiceStub(routing_channel)
    services = heartbeat_pb2_grpc.HeartbeatServiceStub(heartbeat_channel)
    results = []
    try:
        team_id = teams.CreateTeam(routing_pb2.CreateTeamRequest(name="bench")).team.team_id
        audited_statement = team_store._update_statement

        def plain_team(on: bool) -> None:
            team_store._update_statement = _plain_update_team if on else audited_statement

        def update_team(i: int) -> None:
            teams.UpdateTeam(routing_pb2.UpdateTeamRequest(team_id=team_id, slack_channel_id=f"C{i % 7}"))

        # The product twice: how far two identical variants' p50s land apart (the noise).
        team_variants = {"audited": lambda on: None, "audited_again": lambda on: None, "not_audited": plain_team}
        row, p50 = _overhead("RoutingService/UpdateTeam", team_variants, update_team, calls, rng)
        results.append({**row, "p50_ms_audited_again": p50["audited_again"],
                        "a_a_ratio": round(p50["audited"] / p50["audited_again"], 4)})

        service = services.RegisterService(heartbeat_pb2.RegisterServiceRequest(
            heartbeat_name="bench-audit", service_name="bench", alert_interval_seconds=300, team_id=team_id))
        service_id = service.service.service_id
        teams.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=service_id, type=delivery_pb2.TARGET_TYPE_SLACK,
            config=_struct({"channel_id": "C42"})))
        record, take, related = history.record, snapshots.take, HeartbeatServicer._related

        def no_event(on: bool) -> None:
            history.record = (lambda *args, **kwargs: None) if on else record

        def no_history(on: bool) -> None:
            no_event(on)
            snapshots.take = (lambda *args, **kwargs: None) if on else take
            HeartbeatServicer._related = (lambda self, row: snapshots.Related(unavailable=True)) if on else related

        def update_service(i: int) -> None:
            services.UpdateService(heartbeat_pb2.UpdateServiceRequest(
                service_id=service_id, alert_interval_seconds=300 + i % 7))

        service_variants = {"audited": lambda on: None, "not_audited": no_event, "no_history": no_history}
        row, p50 = _overhead("HeartbeatService/UpdateService", service_variants, update_service, calls, rng)
        results.append({**row, "p50_ms_no_event_no_snapshot": p50["no_history"],
                        "change_history_ratio": round(p50["audited"] / p50["no_history"], 4)})
    finally:
        team_store._update_statement = audited_statement
        routing_channel.close()
        heartbeat_channel.close()
        heartbeat.stop(1)
        routing.stop(1)
        db.close()
    return results


def _struct(values: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


FILL = """
    INSERT INTO audit_events (at, source, action_type, resource, resource_id, service_id, principal,
                              key_id, key_name, actor, request_id, before, after)
    SELECT now() - (n * interval '1 second'), 'heartbeat',
           (ARRAY['edit', 'mute', 'unmute', 'activate', 'deactivate'])[1 + n %% 5], 'service',
           (n %% %(services)s + 1)::text, n %% %(services)s + 1, 'key:bench' || n %% %(keys)s,
           'bench' || n %% %(keys)s, 'bench-key-' || n %% %(keys)s,
           CASE WHEN n %% 3 = 0 THEN 'person-' || n %% %(people)s END, md5(n::text),
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
        db.execute(FILL, {"services": SERVICES, "keys": KEYS, "people": PEOPLE, "first": first,
                          "last": min(first + chunk - 1, events)})
        print(f"# {min(first + chunk - 1, events):,} events", file=sys.stderr, flush=True)
    for index in indexes:
        db.execute(index["indexdef"])
    db.execute("VACUUM ANALYZE audit_events")
    # As retention's passes leave it: all but the newest events tallied.
    log = AuditLog(db)
    tail = db.one("SELECT max(event_id) AS id FROM audit_events")["id"]
    for _ in range(600):  # until no transaction of the server older than the mark runs
        log.seal_tally(settle_seconds=0)
        if db.one("SELECT sealed_upto FROM audit_event_tally_mark")["sealed_upto"] == tail:
            break
        time.sleep(0.5)
    db.execute(FILL, {"services": SERVICES, "keys": KEYS, "people": PEOPLE, "first": events + 1,
                      "last": events + UNSEALED})
    print(f"# sealed up to {db.one('SELECT sealed_upto FROM audit_event_tally_mark')['sealed_upto']:,} "
          f"of {tail:,}, then {UNSEALED:,} more", file=sys.stderr, flush=True)
    return time.perf_counter() - started


def query(url: str, events: int, queries: int = 200) -> list[dict]:
    db = Database(url, 4)
    loaded = fill(db, events)
    settings = Settings(database_url=url, monitor_enabled=False)
    server = create_server(heartbeat_app.build(settings, db=db), authorizer=BenchCaller(), port=0, workers=8)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
    rng = random.Random(23)
    askers = {
        "audit_service_history": lambda: heartbeat_pb2.ListAuditEventsRequest(service_id=rng.randint(1, SERVICES)),
        "audit_person_history": lambda: heartbeat_pb2.ListAuditEventsRequest(
            actor=f"person-{rng.randrange(PEOPLE)}"),
        "audit_key_history": lambda: heartbeat_pb2.ListAuditEventsRequest(actor=f"bench-key-{rng.randrange(KEYS)}"),
        "audit_everything": lambda: heartbeat_pb2.ListAuditEventsRequest(),
    }
    results = []
    try:
        size = db.one("SELECT pg_size_pretty(pg_total_relation_size('audit_events')) AS size")["size"]
        for name, ask in askers.items():
            latencies, totals = [], []
            for i in range(queries + 20):
                request = ask()
                started = time.perf_counter()
                answer = stub.ListAuditEvents(request)
                elapsed = time.perf_counter() - started
                if i >= 20:  # the first ones warm the cache
                    latencies.append(elapsed)
                    totals.append(answer.total_count)
            latencies.sort()
            results.append({
                "bench": name, "events": events, "services": SERVICES, "keys": KEYS, "people": PEOPLE,
                "table_size": size, "load_seconds": round(loaded, 1), "queries": queries,
                "median_total": statistics.median(totals), "p50_ms": round(pct(latencies, 50) * 1000, 2),
                "p99_ms": round(pct(latencies, 99) * 1000, 2), "limit_ms": 50,
                "p99_ratio_to_limit": round(pct(latencies, 99) * 1000 / 50, 3)})
    finally:
        channel.close()
        server.stop(1)
        db.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    if not args.skip_overhead:
        with migrated_database(args.dsn) as url:
            load_before = load1()
            for result in overhead(url, args.calls):
                result.update(load1_before=round(load_before, 2), load1=round(load1(), 2))
                print(json.dumps(result), flush=True)
    if not args.skip_query:
        with migrated_database(args.dsn) as url:
            for result in query(url, args.events):
                result["load1"] = round(load1(), 2)
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
