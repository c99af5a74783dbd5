"""Asking the auth service's ``Authorize`` about a key (service credential
attached), from threads (``RemoteVerifier``) or from the gateway's event loop
(``AioRemoteVerifier``). Both follow one policy (``_RemoteAuthorize``): a call
that fails as UNAVAILABLE is tried once more after a short pause, since a
connection being re-established (an auth replica restarting, a connection
cycled by the server) shows as UNAVAILABLE once. RESOURCE_EXHAUSTED (too many
failed verifications for that key id or client address) stays ``ResourceExhausted``
with the auth service's retry-after, a 429 for an HTTP caller; any other failure,
or a second UNAVAILABLE, is ``Unavailable`` for the caller. Each request carries the
caller's address (``client_address``), which the auth service limits failures by.
"""
from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio

from medic.authz.keys import (Verdict, require_service_token, service_credential_metadata,
                              verdict_from_pb)
from medic.config import Settings
from medic.errors import MedicError, ResourceExhausted, Unavailable
from medic.interceptors import aio_service_channel, service_channel
from medic.v1 import auth_pb2, auth_pb2_grpc

AUTHORIZE_ATTEMPTS = 2
AUTHORIZE_RETRY_PAUSE = 0.1


def _authorize_failed(exc: grpc.RpcError) -> MedicError:
    """Too many failed verifications stays a 429 with its Retry-After for the caller;
    anything else means the auth service could not answer (503)."""
    retry_after = tuple((k, v) for k, v in (exc.trailing_metadata() or ()) if k == "retry-after")
    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(exc.details() or "too many failed API key verifications",
                                 trailers=retry_after)
    return Unavailable(f"auth service unavailable ({exc.code().name})", trailers=retry_after)


class _RemoteAuthorize:
    def __init__(self, settings: Settings, target: str | None):
        require_service_token(settings)
        self.timeout = settings.rpc_timeout_seconds
        self.target = target or settings.target("auth")
        self.credential = service_credential_metadata(settings)

    @staticmethod
    def _pause_before_next(exc: grpc.RpcError, attempt: int) -> float:
        """The pause before attempt ``attempt + 1``; raises the caller's error
        (``_authorize_failed``) when there is none."""
        if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt + 1 == AUTHORIZE_ATTEMPTS:
            raise _authorize_failed(exc) from None
        return AUTHORIZE_RETRY_PAUSE


class RemoteVerifier(_RemoteAuthorize):
    """Verifies keys with the auth service's Authorize RPC, from threads."""

    def __init__(self, settings: Settings, target: str | None = None):
        super().__init__(settings, target)
        self.channel = service_channel(self.target, self.credential)
        self.stub = auth_pb2_grpc.AuthServiceStub(self.channel)

    def verify(self, key: str, client_address: str = "") -> Verdict:
        request = auth_pb2.AuthorizeRequest(key=key, client_address=client_address)
        for attempt in range(AUTHORIZE_ATTEMPTS):
            try:
                return verdict_from_pb(self.stub.Authorize(request, timeout=self.timeout))
            except grpc.RpcError as exc:
                time.sleep(self._pause_before_next(exc, attempt))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.channel.close()


class AioRemoteVerifier(_RemoteAuthorize):
    """``RemoteVerifier`` on ``grpc.aio`` (the channel is opened in the running loop)."""

    def __init__(self, settings: Settings, target: str | None = None):
        super().__init__(settings, target)
        self.channel: grpc.aio.Channel | None = None
        self.stub = None

    async def verify(self, key: str, client_address: str = "") -> Verdict:
        if self.stub is None:
            self.channel = aio_service_channel(self.target, self.credential)
            self.stub = auth_pb2_grpc.AuthServiceStub(self.channel)
        request = auth_pb2.AuthorizeRequest(key=key, client_address=client_address)
        for attempt in range(AUTHORIZE_ATTEMPTS):
            try:
                return verdict_from_pb(await self.stub.Authorize(request, timeout=self.timeout))
            except grpc.RpcError as exc:
                await asyncio.sleep(self._pause_before_next(exc, attempt))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
