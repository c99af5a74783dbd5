#!/usr/bin/env python3
"""Authorization overhead (issue 3's bench item; goal: cached auth adds < 0.5 ms).

    .venv/bin/python bench/auth.py [--dsn ...] [--duration 5] [--rounds 3] [--calls 20000]

`medic up` against a fresh database with MEDIC_ALLOW_ANONYMOUS_HEARTBEATS=true
(rate limits so high that the limiter counts every request but refuses none),
1,000 services registered with bulk SQL, then:

  micro  the gateway's real ``AsyncKeyAuthorizer`` (cache in front of the real
         auth service's Authorize RPC, in-memory limiter), in this process,
         --calls decisions each: a cached valid key, an anonymous caller, a
         malformed key, a well-formed key with an unknown id and a real key id
         with a wrong secret (each answered once by the auth service, then from
         the negative cache). Microseconds per call, and the first call's
         milliseconds (the wrong secret's is one argon2 on the auth service).
  http   POST /heartbeat through the gateway, wrk -t2 -c32: with the admin key
         and anonymous, alternating, --rounds times each (req/s, p50, p99; the
         median of the rounds' p50 differences is what auth costs end to end),
         then with a bad key (every answer a 401: what an attacker costs).

Prints one JSON line per figure. A report, not a gate.
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (DEFAULT_DSN, Medic, emit, register_bulk, wait_for_quiet,  # noqa: E402
                          wrk_heartbeats)

HB_POLICY = "/medic.v1.HeartbeatService/RecordHeartbeats"


async def micro(medic: Medic, calls: int) -> list[dict]:
    from medic import contracts
    from medic.authz import AsyncKeyAuthorizer
    from medic.config import Settings
    from medic.errors import MedicError

    token = (Path(medic.data_dir) / "service.token").read_text().strip()
    settings = Settings.from_env({
        "MEDIC_SERVICE_TOKEN": token, "MEDIC_AUTH_PORT": str(medic.ports["auth"]),
        "MEDIC_ALLOW_ANONYMOUS_HEARTBEATS": "true", "MEDIC_RATE_LIMIT_HEARTBEAT_PER_MINUTE": "1000000000",
        "MEDIC_RATE_LIMIT_ANONYMOUS_HEARTBEAT_PER_MINUTE": "1000000000"})
    authorizer = AsyncKeyAuthorizer(settings)
    policy = contracts.policy_for(HB_POLICY)
    unknown = f"mdk_{'A' * 12}_{secrets.token_urlsafe(32)}"
    wrong_secret = f"mdk_{medic.admin_key.split('_')[1]}_{secrets.token_urlsafe(32)}"
    cases = {"cached_valid_key": {"authorization": f"Bearer {medic.admin_key}"},
             "anonymous": {},
             "malformed_key": {"authorization": "Bearer mdk_not-a-key"},
             "unknown_key_id_negative_cached": {"authorization": f"Bearer {unknown}"},
             # A real key id with a wrong secret: its first answer costs the auth
             # service one argon2 (first_call_ms); the same wrong key again is cached.
             "wrong_secret_real_key_id_negative_cached": {"authorization": f"Bearer {wrong_secret}"}}
    rows = []
    for name, headers in cases.items():
        async def once():
            try:
                await authorizer.authorize(policy, headers, "127.0.0.1")
            except MedicError:
                pass
        started = time.perf_counter()
        await once()  # fills the cache (one Authorize RPC for a key)
        first = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(calls):
            await once()
        per_call = (time.perf_counter() - started) / calls
        rows.append({"figure": f"auth_decision_{name}", "us_per_call": round(per_call * 1e6, 2),
                     "calls": calls, "first_call_ms": round(first * 1e3, 2)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="key / anonymous runs, alternating")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--services", type=int, default=1000)
    args = parser.parse_args()
    with Medic(args.dsn, env_overrides={"MEDIC_ALLOW_ANONYMOUS_HEARTBEATS": "true"}) as medic:
        register_bulk(medic.dsn, args.services)
        load = wait_for_quiet(max_wait=60)
        for row in asyncio.run(micro(medic, args.calls)):
            emit({**row, "load1": load})
        def measure(figure: str, key: str | None, **extra) -> dict:
            """One wrk run after a 2 s warm-up, emitted as ``figure``."""
            wrk_heartbeats(medic.gateway_url, services=args.services, duration=2, key=key)
            load = wait_for_quiet(max_wait=60)
            result = wrk_heartbeats(medic.gateway_url, services=args.services, duration=args.duration, key=key)
            emit({"figure": figure, **extra, "load1": load, **result})
            return result

        # Key and anonymous alternate, --rounds times each: the machine's speed drifts by
        # more than auth costs between two runs a minute apart, so the overhead is the
        # median of the differences within a round.
        differences = []
        for round_ in range(args.rounds):
            with_key = measure("http_post_heartbeat_key", medic.admin_key, round=round_ + 1)
            anonymous = measure("http_post_heartbeat_anonymous", None, round=round_ + 1)
            if "p50_ms" in with_key and "p50_ms" in anonymous:
                differences.append(with_key["p50_ms"] - anonymous["p50_ms"])
        if differences:
            emit({"figure": "http_auth_overhead_p50_ms", "value": round(statistics.median(differences), 3),
                  "rounds": [round(d, 3) for d in differences]})
        measure("http_post_heartbeat_bad_key", f"mdk_{'B' * 12}_{secrets.token_urlsafe(32)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
