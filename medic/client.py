"""A small Python client for internal services that talk to Medic over gRPC.

    from medic.client import MedicClient

    with MedicClient("localhost:50052", api_key="mdk_...") as medic:
        medic.heartbeat("nightly-backup")                 # status UP
        medic.heartbeat("nightly-backup", status="FAILED")
        with medic.run("nightly-backup") as run:          # STARTED, then COMPLETED (FAILED on an
            run.output = "42 rows"                        # exception), correlated by a run id
        medic.heartbeats.ListServices(heartbeat_pb2.ListServicesRequest())   # any RPC

Every call carries the API key (``authorization: Bearer``), a deadline, and a
request id; calls that fail with UNAVAILABLE are retried with backoff (every
Medic RPC is safe to retry: heartbeats are idempotent enough that a retried
one at worst counts twice, and registration of an existing name changes
nothing).
"""
from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
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


MAX_OUTPUT_BYTES = 10 * 1024


def _cut(output: str) -> str:
    """The last 10 KiB of an output (its end says most about a failure)."""
    data = output.encode("utf-8")
    return data[-MAX_OUTPUT_BYTES:].decode("utf-8", "ignore") if len(data) > MAX_OUTPUT_BYTES else output


class JobRun:
    """A run started by ``MedicClient.run``; set ``output`` to send it with the end."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.output = ""


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

    def heartbeat(self, heartbeat_name: str, status: str = "UP", run_id: str = "",
                  message: str = "") -> heartbeat_pb2.Heartbeat:
        """Records one heartbeat; returns it once committed. With a run id, or a status
        of STARTED, COMPLETED or FAILED, it starts or ends a job run; ``message`` is the
        run's output (at most 10 KiB)."""
        response = self.heartbeats.RecordHeartbeat(heartbeat_pb2.RecordHeartbeatRequest(
            heartbeat_name=heartbeat_name, status=status, run_id=run_id, message=message))
        return response.heartbeat

    def start(self, heartbeat_name: str, run_id: str = "") -> heartbeat_pb2.Heartbeat:
        """Starts a job run (ended by ``complete`` or ``fail`` with the same run id, or
        without one, by the next end of the service's newest open run)."""
        return self.heartbeat(heartbeat_name, "STARTED", run_id)

    def complete(self, heartbeat_name: str, run_id: str = "", message: str = "") -> heartbeat_pb2.Heartbeat:
        return self.heartbeat(heartbeat_name, "COMPLETED", run_id, message)

    def fail(self, heartbeat_name: str, run_id: str = "", message: str = "") -> heartbeat_pb2.Heartbeat:
        return self.heartbeat(heartbeat_name, "FAILED", run_id, message)

    @contextlib.contextmanager
    def run(self, heartbeat_name: str, run_id: str | None = None) -> Iterator["JobRun"]:
        """A job run around a block: STARTED on entry, COMPLETED when the block ends, FAILED
        (with the exception as output, unless ``output`` was set) when it raises."""
        run = JobRun(run_id or uuid.uuid4().hex)
        self.start(heartbeat_name, run.run_id)
        try:
            yield run
        except BaseException as exc:
            self.fail(heartbeat_name, run.run_id, _cut(run.output or f"{type(exc).__name__}: {exc}"))
            raise
        self.complete(heartbeat_name, run.run_id, _cut(run.output))

    def runs(self, heartbeat_name: str, limit: int = 50) -> list[heartbeat_pb2.JobRun]:
        """The service's runs, newest first."""
        return list(self.heartbeats.ListJobRuns(heartbeat_pb2.ListJobRunsRequest(
            heartbeat_name=heartbeat_name, limit=limit)).runs)

    def stats(self, heartbeat_name: str) -> heartbeat_pb2.GetJobStatsResponse:
        """Duration statistics of the service's last 100 completed runs."""
        return self.heartbeats.GetJobStats(heartbeat_pb2.GetJobStatsRequest(heartbeat_name=heartbeat_name))

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> "MedicClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
