"""A small Python client for internal services that talk to Medic over gRPC.

    from medic.client import MedicClient

    with MedicClient("localhost:50052", api_key="mdk_...") as medic:
        medic.heartbeat("nightly-backup")                 # status UP
        medic.heartbeat("nightly-backup", status="FAILED")
        medic.heartbeats.ListServices(heartbeat_pb2.ListServicesRequest())   # any RPC

Every call carries the API key (``authorization: Bearer``), a deadline, and a
request id; calls that fail with UNAVAILABLE are retried with backoff (every
Medic RPC is safe to retry: heartbeats are idempotent enough that a retried
one at worst counts twice, and registration of an existing name changes
nothing).
"""
from __future__ import annotations

import random
import time
from typing import Any

import grpc

from medic.interceptors import CHANNEL_OPTIONS, ClientInterceptor
from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


class _Retrying:
    """Wraps a stub so every unary call gets a deadline and retries on UNAVAILABLE."""

    def __init__(self, stub: Any, timeout: float, retries: int, backoff: float):
        self._stub = stub
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            kwargs.setdefault("timeout", self._timeout)
            attempt = 0
            while True:
                try:
                    return method(request, **kwargs)
                except grpc.RpcError as exc:
                    if exc.code() not in RETRYABLE or attempt >= self._retries:
                        raise
                    time.sleep(self._backoff * (2 ** attempt) * (0.5 + random.random()))
                    attempt += 1

        return call


class MedicClient:
    def __init__(self, target: str, *, api_key: str | None = None, timeout: float = 5.0,
                 retries: int = 3, backoff: float = 0.2,
                 credentials: grpc.ChannelCredentials | None = None):
        options = list(CHANNEL_OPTIONS)
        channel = (grpc.secure_channel(target, credentials, options=options) if credentials
                   else grpc.insecure_channel(target, options=options))
        metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._channel = grpc.intercept_channel(channel, ClientInterceptor(metadata))
        self._raw_channel = channel
        self.heartbeats = _Retrying(heartbeat_pb2_grpc.HeartbeatServiceStub(self._channel),
                                    timeout, retries, backoff)

    def heartbeat(self, heartbeat_name: str, status: str = "UP", run_id: str = "") -> heartbeat_pb2.Heartbeat:
        """Records one heartbeat; returns it once committed."""
        response = self.heartbeats.RecordHeartbeat(heartbeat_pb2.RecordHeartbeatRequest(
            heartbeat_name=heartbeat_name, status=status, run_id=run_id))
        return response.heartbeat

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> "MedicClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
