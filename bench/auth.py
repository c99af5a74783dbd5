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
  attack 8 clients (threads, keep-alive, from 127.0.0.1) sending wrong secrets
         for a real key id (the admin key's) as fast as they are answered,
         --attack-seconds long. Once 10 attempts got 401 (the key id's failures
         are used up) and a --warmup more, the auth service's CPU over
         a window, divided by the attempts the gateway refused in it (429 or
         401), is the CPU per rejected attempt (goal <= 1 ms once the failure
         limit holds), then a legitimate new key's first request (its one
         argon2; from 127.0.0.2, another client IP) is timed --new-keys times
         and compared with the same measured before the attack (goal: <= 2x).

Prints one JSON line per figure. A report, not a gate.
    --figures attack   runs only the attack figure (comma-separated: micro,http,attack)
"""
from __future__ import annotations

import asyncio
import collections
import http.client
import json
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (Medic, command_line, emit, register_bulk, wait_for_quiet,  # noqa: E402
                          wrk_heartbeats)

HB_POLICY = "/medic.v1.HeartbeatService/RecordHeartbeats"
ATTACK_CLIENTS = 8
FAILURES_PER_KEY = 10  # MEDIC_AUTH_FAILURES_PER_KEY_PER_MINUTE's default
LEGIT_ADDRESS = "127.0.0.2"  # another client IP than the attackers' (loopback is 127/8)


def _request(conn: http.client.HTTPConnection, path: str, key: str,
             method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _first_request_ms(medic: Medic, n: int) -> tuple[float, int]:
    """Creates a key (as admin) and times its first request from LEGIT_ADDRESS: a cache miss
    everywhere, so one Authorize with one argon2. Returns (milliseconds, HTTP status)."""
    port = medic.ports["gateway"]
    admin = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        status, body = _request(admin, "/v2/api-keys", medic.admin_key, "POST",
                                {"name": f"legit-{n}-{secrets.token_hex(3)}", "scopes": ["read"]})
    finally:
        admin.close()
    if status != 201:
        raise RuntimeError(f"creating a key answered {status}: {body[:200]!r}")
    key = json.loads(body)["results"]["key"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(LEGIT_ADDRESS, 0))
    conn.connect()  # the connection is not what is timed
    try:
        started = time.perf_counter()
        status, _ = _request(conn, "/service/bench-target", key)
        return (time.perf_counter() - started) * 1e3, status
    finally:
        conn.close()


def attack(medic: Medic, seconds: float, warmup: float, new_keys: int) -> list[dict]:
    import psutil

    auth = psutil.Process(medic.children()["auth"])
    port = medic.ports["gateway"]
    admin = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    _request(admin, "/service", medic.admin_key, "POST",
             {"heartbeat_name": "bench-target", "service_name": "bench", "alert_interval": 60})
    admin.close()

    def first_requests() -> list[tuple[float, int]]:
        results = []
        for n in range(new_keys):
            results.append(_first_request_ms(medic, n))
            time.sleep(0.3)
        return results

    quiet = first_requests()

    key_id = medic.admin_key.split("_")[1]
    statuses: collections.Counter = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def attacker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            try:
                status = _request(conn, "/service/bench-target",
                                  f"mdk_{key_id}_{secrets.token_urlsafe(32)}")[0]
            except (OSError, http.client.HTTPException) as exc:  # counted, then a new connection
                status = type(exc).__name__
                conn.close()
                time.sleep(0.05)
            with lock:
                statuses[status] += 1
        conn.close()

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(ATTACK_CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    # The window starts once the key id's failures are used up (10 answered 401) and
    # the argon2 work still running has ended: from then on every attempt is refused early.
    deadline = time.monotonic() + 30
    while statuses[401] < FAILURES_PER_KEY and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(warmup)
    with lock:
        before = dict(statuses)
    cpu_before, at = sum(auth.cpu_times()[:2]), time.monotonic()
    time.sleep(max(1.0, (seconds - warmup) / 2))
    cpu_after, window = sum(auth.cpu_times()[:2]), time.monotonic() - at
    with lock:
        after = dict(statuses)
    during = first_requests()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    attack_seconds = time.monotonic() - started

    in_window = {code: after.get(code, 0) - before.get(code, 0) for code in after}
    rejected = sum(n for code, n in in_window.items() if code in (401, 429, 503))
    cpu = cpu_after - cpu_before
    quiet_ms = statistics.median(ms for ms, _ in quiet)
    during_ms = statistics.median(ms for ms, _ in during)
    return [
        {"figure": "attack_auth_cpu", "clients": ATTACK_CLIENTS, "window_s": round(window, 2),
         "auth_cpu_s": round(cpu, 3), "auth_cpu_percent": round(100 * cpu / window, 1),
         "rejected_in_window": rejected, "statuses_in_window": in_window,
         "cpu_ms_per_rejected_attempt": round(1e3 * cpu / rejected, 3) if rejected else None,
         "goal_ms": 1.0},
        {"figure": "attack_new_key_first_request", "quiet_ms": [round(ms, 1) for ms, _ in quiet],
         "during_attack_ms": [round(ms, 1) for ms, _ in during],
         "during_attack_statuses": [code for _, code in during],
         "quiet_median_ms": round(quiet_ms, 1), "during_attack_median_ms": round(during_ms, 1),
         "ratio": round(during_ms / quiet_ms, 2), "goal_ratio": 2.0},
        {"figure": "attack_totals", "seconds": round(attack_seconds, 1), "statuses": dict(statuses)},
    ]


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
    parser = command_line(__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="key / anonymous runs, alternating")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--figures", default="micro,http,attack")
    parser.add_argument("--attack-seconds", type=float, default=24.0,
                        help="under a minute, the failure limit's window")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds after the 10th 401 before the CPU window")
    parser.add_argument("--new-keys", type=int, default=7)
    args = parser.parse_args()
    figures = set(args.figures.split(","))
    if "attack" in figures:
        # Its own `medic up` (the default limits; management limit raised as for every bench).
        with Medic(args.dsn) as medic:
            load = wait_for_quiet(max_wait=60)
            for row in attack(medic, args.attack_seconds, args.warmup, args.new_keys):
                emit({**row, "load1": load})
    if not figures & {"micro", "http"}:
        return 0
    with Medic(args.dsn, env_overrides={"MEDIC_ALLOW_ANONYMOUS_HEARTBEATS": "true"}) as medic:
        register_bulk(medic.dsn, args.services)
        load = wait_for_quiet(max_wait=60)
        if "micro" in figures:
            for row in asyncio.run(micro(medic, args.calls)):
                emit({**row, "load1": load})
        if "http" not in figures:
            return 0
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
