"""The authorizers: ``KeyAuthorizer``, the ``medic.interceptors.Authorizer`` of
every gRPC service, and ``AsyncKeyAuthorizer``, the HTTP gateway's. Both follow
``rules.Rules``; they differ in how they wait (threads or the event loop) and in
what they accept: over HTTP only API keys (as Bearer or HTTP Basic credentials,
``keys.http_credential``) and anonymous heartbeats (the service credential and
``x-medic-*`` headers are internal, so rejected or ignored); over gRPC Bearer only."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from medic import ratelimit
from medic.authz.cache import AsyncCachedVerifier, AsyncVerifier, CachedVerifier, Verifier
from medic.authz.keys import SERVICE_TOKEN_PREFIX, bearer_token, http_credential
from medic.authz.remote import AioRemoteVerifier, RemoteVerifier
from medic.authz.rules import Rules, identity_metadata, peer_address
from medic.config import Settings
from medic.contracts import MethodPolicy
from medic.interceptors import Identity
from medic.ratelimit import RateLimitStatus


class KeyAuthorizer:
    """``verifier``: where keys not in the cache are verified; default: the auth
    service's Authorize RPC. ``limiter``: default from MEDIC_REDIS_URL."""

    def __init__(self, settings: Settings, verifier: Verifier | None = None,
                 limiter: ratelimit.RateLimiter | None = None):
        self.rules = Rules(settings)
        if verifier is None:
            verifier = RemoteVerifier(settings)
        if not isinstance(verifier, CachedVerifier):
            verifier = CachedVerifier(verifier, settings.auth_cache_ttl_seconds)
        self.verifier = verifier
        self.limiter = limiter or ratelimit.limiter_from_settings(settings)

    def authorize(self, policy: MethodPolicy, metadata: dict[str, str], peer: str) -> Identity:
        credential = bearer_token(metadata.get("authorization"))
        if credential and credential.startswith(SERVICE_TOKEN_PREFIX):
            return self.rules.service_caller(credential, metadata)
        address = peer_address(peer)
        verdict = None if credential is None else self.verifier.verify(credential, address)
        identity, limit, kind = self.rules.caller(policy, address, verdict)
        self.rules.counted(policy, self.limiter.check(self.rules.bucket(identity, policy), limit), kind)
        return identity


@dataclass(frozen=True)
class Decision:
    """The gateway's answer for one HTTP request."""
    identity: Identity
    # Figures for the X-RateLimit-* headers; None when the caller is not limited.
    rate_limit: RateLimitStatus | None
    # Metadata for the onward RPC (sent alongside the gateway's service credential).
    metadata: tuple[tuple[str, str], ...]


class AsyncKeyAuthorizer:
    """The edge that authenticates and limits an HTTP caller once, then
    propagates its identity (``Decision.metadata``)."""

    def __init__(self, settings: Settings, verifier: AsyncVerifier | None = None,
                 limiter: ratelimit.RateLimiter | None = None):
        self.rules = Rules(settings)
        if verifier is None:
            verifier = AioRemoteVerifier(settings)
        if not isinstance(verifier, AsyncCachedVerifier):
            verifier = AsyncCachedVerifier(verifier, settings.auth_cache_ttl_seconds)
        self.verifier = verifier
        self.limiter = limiter or ratelimit.limiter_from_settings(settings, asynchronous=True)

    async def authorize(self, policy: MethodPolicy, headers: Mapping[str, str],
                        client_ip: str) -> Decision:
        credential = http_credential(_lowered(headers).get("authorization"))
        verdict = None if credential is None else await self.verifier.verify(credential, client_ip)
        identity, limit, kind = self.rules.caller(policy, client_ip, verdict)
        status = self.rules.counted(
            policy, await self.limiter.acheck(self.rules.bucket(identity, policy), limit), kind)
        return Decision(identity=identity, rate_limit=status, metadata=identity_metadata(identity))


def _lowered(headers: Mapping[str, str]) -> Mapping[str, str]:
    if isinstance(headers, dict):
        return {k.lower(): v for k, v in headers.items()}
    return headers  # case-insensitive already (e.g. starlette Headers)
