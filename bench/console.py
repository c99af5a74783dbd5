#!/usr/bin/env python3
"""The web console's server-side render time at scale (issue 20).

    .venv/bin/python bench/console.py [--dsn ...] [--services 100000] [--alerts 1000] [--requests 200]

`medic up` against a fresh database holding --services services (bulk SQL, setup
speed; deadlines spread over an hour, last heartbeats over a day), --alerts of
them down with an active alert and a transition each. Signs in to the console
with the admin key, then requests each page --requests times, one at a time,
and reads the gateway's own Server-Timing header: `render` is the server-side
time of the whole page (authorization, every RPC, the template), and `rpc-*`
the RPCs each section made. Goals: services page (page 1 by deadline, and a
name search) p99 <= 150 ms; overview p99 <= 100 ms; no section > 3 RPCs. The
last page is read twice: as the console's Last link (a cursor) and as a shared
link to its page number (an offset), for comparison.

Prints one JSON line per page and a summary. A report, not a gate.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from bench.common import Medic, command_line, pct, wait_for_quiet  # noqa: E402

GOALS_MS = {"services by deadline": 150, "services name search": 150, "overview": 100}
MAX_RPCS_PER_SECTION = 3


def populate(dsn: str, services: int, alerts: int) -> None:
    conn = psycopg2.connect(dsn, options="-c search_path=medic")
    with conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, state, team, priority,
                                     recent_beats, last_heartbeat_at, deadline_at)
               SELECT 'svc-' || lpad(n::text, 6, '0'), 'service ' || n, 3600, 'up',
                      (ARRAY['edge', 'payments', 'storage', 'search'])[1 + n %% 4],
                      (ARRAY['p1', 'p2', 'p3', 'p4', 'p5'])[1 + n %% 5],
                      ARRAY[now() - make_interval(secs => n %% 86400)], now() - make_interval(secs => n %% 86400),
                      now() + make_interval(secs => 600 + (n * 7919) %% 3600)
               FROM generate_series(0, %s - 1) AS n""", (services,))
        cur.execute("UPDATE services SET state = 'down' WHERE service_id <= %s", (alerts,))
        cur.execute("""INSERT INTO alerts (service_id, reason, opened_at)
                       SELECT service_id, 'missed_heartbeats', now() - make_interval(secs => service_id * 13)
                       FROM services WHERE service_id <= %s""", (alerts,))
        cur.execute("""INSERT INTO service_transitions (service_id, from_state, to_state, reason, alert_id, at)
                       SELECT a.service_id, 'up', 'down', 'missed_heartbeats', a.alert_id, a.opened_at
                       FROM alerts a ORDER BY a.opened_at""")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ANALYZE")
    conn.close()


def sign_in(url: str, key: str) -> requests.Session:
    session = requests.Session()
    form = session.get(url + "/ui/login", timeout=10).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    response = session.post(url + "/ui/login", data={"csrf": token, "key": key}, timeout=10)
    response.raise_for_status()
    assert response.url.endswith("/ui/"), "sign-in failed"
    return session


def server_timing(header: str) -> tuple[float, dict[str, int]]:
    render, rpcs = float("nan"), {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";")
        if name == "render":
            render = float(rest.split("=", 1)[1])
        elif name.startswith("rpc-"):
            rpcs[name[4:]] = int(re.search(r'desc="(\d+)"', rest).group(1))
    return render, rpcs


def measure(session: requests.Session, url: str, path: str, count: int) -> dict:
    for _ in range(5):  # warm-up: connections, caches, plans
        session.get(url + path, timeout=30)
    renders, walls, most_rpcs = [], [], {}
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url + path, timeout=30)
        walls.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        render, rpcs = server_timing(response.headers["Server-Timing"])
        renders.append(render)
        for section, n in rpcs.items():
            most_rpcs[section] = max(most_rpcs.get(section, 0), n)
    renders.sort()
    walls.sort()
    return {"path": path, "requests": count, "render_p50_ms": round(pct(renders, 50), 1),
            "render_p99_ms": round(pct(renders, 99), 1), "render_max_ms": round(renders[-1], 1),
            "client_p50_ms": round(pct(walls, 50), 1), "client_p99_ms": round(pct(walls, 99), 1),
            "max_rpcs_per_section": most_rpcs, "bytes": len(response.content)}


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with Medic(server_dsn=args.dsn, env_overrides={"MEDIC_MONITOR_TICK_SECONDS": "1"}) as medic:
        started = time.perf_counter()
        populate(medic.dsn, args.services, args.alerts)
        print(f"# {args.services} services, {args.alerts} active alerts in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        # Console pages count in their own rate-limit class, generous here (bench.common).
        session = sign_in(medic.gateway_url, medic.admin_key)
        pages = {"services by deadline": "/ui/services?sort=deadline",
                 "services name search": "/ui/services?q=4242",
                 # The console's Last link (a keyset read backwards from the end) ...
                 "services last page by deadline": "/ui/services?sort=deadline&last=1",
                 # ... and a shared link to a page number: an OFFSET that steps over every row before.
                 "services deep page by offset": f"/ui/services?sort=deadline&page={(args.services + 49) // 50}",
                 "overview": "/ui/",
                 "overview live refresh": "/ui/live",
                 "service detail": "/ui/services/1",
                 "alerts": "/ui/alerts?status=active",
                 "deliveries": "/ui/deliveries"}
        load = wait_for_quiet(quiet=True, max_wait=60)
        results = {}
        for name, path in pages.items():
            result = {"page": name, "services": args.services, "active_alerts": args.alerts, "load1": load,
                      **measure(session, medic.gateway_url, path, args.requests)}
            goal = GOALS_MS.get(name)
            if goal:
                result["goal_p99_ms"] = goal
                result["p99_over_goal"] = round(result["render_p99_ms"] / goal, 2)
            results[name] = result
            print(json.dumps(result), flush=True)
        worst = max(n for r in results.values() for n in r["max_rpcs_per_section"].values())
        print(json.dumps({"summary": {name: r["render_p99_ms"] for name, r in results.items()},
                          "most_rpcs_in_a_section": worst, "rpc_goal": MAX_RPCS_PER_SECTION,
                          "goals_met": worst <= MAX_RPCS_PER_SECTION and all(
                              results[n]["render_p99_ms"] <= g for n, g in GOALS_MS.items())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
