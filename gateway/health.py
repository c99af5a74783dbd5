"""Health endpoints: liveness of the gateway, readiness of what it depends on.

Readiness asks each backend's standard gRPC health service; the heartbeat
service also reports the database (``medic.dependency.database``), so a 503
says which dependency is down. Checks run concurrently with a short deadline.
"""
from __future__ import annotations

import asyncio
import datetime as dt

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import medic
from medic.health import grpc_status
from medic.server import DEPENDENCY_HEALTH_PREFIX

CHECK_TIMEOUT = 1.0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


async def dependency_status(gw) -> dict[str, str]:
    """{dependency: healthy | unhealthy | unreachable}: each backend service and the database."""
    names = list(gw.channels)
    checks = [grpc_status(gw.channels[name], "", CHECK_TIMEOUT) for name in names]
    checks.append(grpc_status(gw.channels["heartbeat"], DEPENDENCY_HEALTH_PREFIX + "database",
                              CHECK_TIMEOUT))
    results = await asyncio.gather(*checks)
    status = dict(zip(names, results[:-1]))
    status["database"] = results[-1] if results[-1] != "unreachable" else "unknown"
    return status


def routes(gw) -> list[Route]:
    async def network(request: Request) -> Response:
        return Response(status_code=204)

    async def live(request: Request) -> Response:
        return Response(f'{{"status":"alive","timestamp":"{_now()}"}}', media_type="application/json")

    async def ready(request: Request) -> Response:
        status = await dependency_status(gw)
        is_ready = all(v == "healthy" for v in status.values())
        body = {"status": "ready" if is_ready else "not_ready", "timestamp": _now(),
                "database": status["database"],
                "services": {k: v for k, v in status.items() if k != "database"}}
        return _json(body, 200 if is_ready else 503)

    async def health(request: Request) -> Response:
        status = await dependency_status(gw)
        healthy = all(v == "healthy" for v in status.values())
        body = {"status": "healthy" if healthy else "unhealthy", "timestamp": _now(),
                "version": medic.__version__,
                "components": {k: {"status": v} for k, v in status.items()}}
        return _json(body, 200 if healthy else 503)

    return [Route("/v1/healthcheck/network", network, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"])]


def _json(body, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
