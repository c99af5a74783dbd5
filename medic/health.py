"""Asking a Medic process whether it is up: the standard gRPC health service
(``grpc.health.v1``) of the services and the monitor, ``GET /health/live`` of the
gateway. One implementation for everything that waits for a process or reports
on one: ``medic up``, ``medic healthcheck``, the gateway's readiness, the tests.
"""
from __future__ import annotations

import urllib.request

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def grpc_check(target: str, service: str = "", timeout: float = 1.0) -> str:
    """``grpc_status`` of the gRPC server at ``target``, on a channel of its own."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return "unknown" if exc.code() == grpc.StatusCode.NOT_FOUND else "unreachable"
    return "healthy" if reply.status == SERVING else "unhealthy"


def grpc_serving(target: str, service: str = "", timeout: float = 1.0) -> bool:
    """Whether the gRPC server at ``target`` answers SERVING for ``service``
    ("" = the server as a whole)."""
    return grpc_check(target, service, timeout) == "healthy"


def http_alive(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url`` (a gateway's /health/live) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def process_ready(process: str, host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether the Medic process ``process`` (gateway, auth, heartbeat, ...)
    listening on ``host:port`` is up and ready."""
    if process == "gateway":
        return http_alive(f"http://{host}:{port}/health/live", timeout)
    return grpc_serving(f"{host}:{port}", timeout=timeout)


async def grpc_status(channel: grpc.aio.Channel, service: str = "", timeout: float = 1.0) -> str:
    """healthy, unhealthy, unreachable, or unknown (the server does not know
    ``service``), asked on an open channel."""
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as exc:
        return "unknown" if exc.code() == grpc.StatusCode.NOT_FOUND else "unreachable"
    return "healthy" if response.status == SERVING else "unhealthy"
