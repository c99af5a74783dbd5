"""Metrics every Medic process exports. Domain metrics live in one ``metrics.py``
per service package; all names carry the ``medic_`` prefix."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPC_REQUESTS = Counter(
    "medic_rpc_requests_total", "RPCs served, by method and status code",
    ["service", "method", "code"])
RPC_LATENCY = Histogram(
    "medic_rpc_duration_seconds", "Time to serve an RPC, by method",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
DEPENDENCY_UP = Gauge(
    "medic_dependency_up", "1 when a dependency (database, redis, a service) answers, else 0",
    ["dependency"])


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Starts the Prometheus /metrics HTTP endpoint in a daemon thread."""
    server, _thread = start_http_server(port, addr=host)
    return server.server_address[1]
