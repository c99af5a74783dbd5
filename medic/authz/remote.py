"""Asking the auth service's ``Authorize`` about a key (service credential
attached), from threads (``RemoteVerifier``) or from the gateway's event loop
(``AioRemoteVerifier``). Both follow one policy (``_RemoteAuthorize``): a call
that fails as UNAVAILABLE is tried once more after a short pause, since a
connection being re-established (an auth replica restarting, a connection
cycled by the server) shows as UNAVAILABLE once; any other failure, or a second
one, is ``Unavailable`` for the caller.
"""
from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio

from medic.authz.keys import (Verdict, require_service_token, service_credential_metadata,
                              verdict_from_pb)
from medic.config import Settings
from medic.errors import Unavailable
from medic.interceptors import aio_service_channel, service_channel
from medic.v1 import auth_pb2, auth_pb2_grpc

AUTHORIZE_ATTEMPTS = 2
AUTHORIZE_RETRY_PAUSE = 0.1


class _RemoteAuthorize:
    def __init__(self, settings: Settings, target: str | None):
        require_service_token(settings)
        self.timeout = settings.rpc_timeout_seconds
        self.target = target or settings.target("auth")
        self.credential = service_credential_metadata(settings)

    @staticmethod
    def _pause_before_next(exc: grpc.RpcError, attempt: int) -> float:
        """The pause before attempt ``attempt + 1``; raises Unavailable when there is none."""
        if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt + 1 == AUTHORIZE_ATTEMPTS:
            raise Unavailable(f"auth service unavailable ({exc.code().name})") from None
        return AUTHORIZE_RETRY_PAUSE


class RemoteVerifier(_RemoteAuthorize):
    """Verifies keys with the auth service's Authorize RPC, from threads."""

    def __init__(self, settings: Settings, target: str | None = None):
        super().__init__(settings, target)
        self.channel = service_channel(self.target, self.credential)
        self.stub = auth_pb2_grpc.AuthServiceStub(self.channel)

    def verify(self, key: str) -> Verdict:
        request = auth_pb2.AuthorizeRequest(key=key)
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

    async def verify(self, key: str) -> Verdict:
        if self.stub is None:
            self.channel = aio_service_channel(self.target, self.credential)
            self.stub = auth_pb2_grpc.AuthServiceStub(self.channel)
        request = auth_pb2.AuthorizeRequest(key=key)
        for attempt in range(AUTHORIZE_ATTEMPTS):
            try:
                return verdict_from_pb(await self.stub.Authorize(request, timeout=self.timeout))
            except grpc.RpcError as exc:
                await asyncio.sleep(self._pause_before_next(exc, attempt))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
