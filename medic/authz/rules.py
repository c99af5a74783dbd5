"""Who may call what: the service credential, propagated identities, anonymous
heartbeats, key verdicts against an RPC's scope, and rate-limit outcomes.

An RPC's scope and rate-limit class are declared in its ``.proto`` file and read
through ``medic.contracts``; ``admin`` grants every scope (``has_scope``); which
limit applies to a caller is ``limit_for`` (a key) or the anonymous heartbeat limit
(MEDIC_RATE_LIMIT_ANONYMOUS_HEARTBEAT_PER_MINUTE, per client IP). The window maths of the limits is ``medic.ratelimit``'s. Pure but for the metrics:
the authorizers (``authorizers.py``) supply the verdict and the limiter's answer.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote

from medic import metrics, ratelimit
from medic.authz.keys import SCOPES, SERVICE_TOKEN_PREFIX, KeyGrant, Verdict
from medic.config import Settings
from medic.contracts import MethodPolicy
from medic.errors import MedicError, PermissionDenied, ResourceExhausted, Unauthenticated
from medic.interceptors import Identity
from medic.ratelimit import RateLimitStatus

PRINCIPAL_HEADER = "x-medic-principal"
SCOPES_HEADER = "x-medic-scopes"
NAME_HEADER = "x-medic-principal-name"
SERVICE_PRINCIPAL = "service:medic"
SERVICE_IDENTITY = Identity(principal=SERVICE_PRINCIPAL, scopes=frozenset({"admin"}),
                            name="medic")

FAILURE_MESSAGES = {
    "missing_key": "missing API key (Authorization: Bearer <key>)",
    "invalid_key": "invalid API key",
    "expired_key": "API key expired",
    "revoked_key": "API key revoked",
}

_successes = metrics.labelled(metrics.AUTH_SUCCESSES)


def has_scope(scopes: frozenset[str], required: str) -> bool:
    return "admin" in scopes or required in scopes


def limit_for(grant: KeyGrant, rate_class: str, console_per_minute: int,
              playbook_execute_per_minute: int = 10) -> int:
    """Requests per minute a key may make in ``rate_class`` (its own limits, or
    the defaults, as ``Authorize`` answered them). Console page views get
    ``console_per_minute`` (MEDIC_RATE_LIMIT_CONSOLE_PER_MINUTE): a person clicking
    through pages, with the overview refreshing itself every 5 s, makes far more
    requests than the management default allows; a key trusted with a higher
    management limit keeps it for pages too. Running playbooks by hand has one
    limit for every key, MEDIC_RATE_LIMIT_PLAYBOOK_EXECUTE_PER_MINUTE."""
    if rate_class == "heartbeat":
        return grant.heartbeat_per_minute
    if rate_class == "console":
        return max(console_per_minute, grant.management_per_minute)
    if rate_class == "playbook_execute":
        return playbook_execute_per_minute
    return grant.management_per_minute


def peer_address(peer: str) -> str:
    """The client address of a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:rest.find("]")]
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return kind or "unknown"


def reject(reason: str, scope: str = "") -> MedicError:
    """The error for a refused caller, counted by reason. Never carries the key."""
    metrics.AUTH_FAILURES.labels(reason).inc()
    if reason == "insufficient_scope":
        return PermissionDenied(f"API key lacks the `{scope}` scope this call requires")
    return Unauthenticated(FAILURE_MESSAGES[reason])


def propagated_identity(metadata: Mapping[str, str]) -> Identity | None:
    principal = metadata.get(PRINCIPAL_HEADER)
    if not principal:
        return None
    scopes = frozenset(s for s in (metadata.get(SCOPES_HEADER) or "").split(",") if s in SCOPES)
    return Identity(principal=principal, scopes=scopes,
                    name=unquote(metadata.get(NAME_HEADER) or ""))


def identity_metadata(identity: Identity) -> tuple[tuple[str, str], ...]:
    """Metadata propagating ``identity`` on an onward RPC (sent with the service credential)."""
    return ((PRINCIPAL_HEADER, identity.principal),
            (SCOPES_HEADER, ",".join(sorted(identity.scopes))),
            (NAME_HEADER, quote(identity.name, safe="")))


class Rules:
    """Everything the authorizers decide, without the waiting."""

    def __init__(self, settings: Settings):
        token = settings.service_token
        self._service_digest = hashlib.sha256(token.encode()).digest() if token else None
        self.allow_anonymous = settings.allow_anonymous_heartbeats
        self.anonymous_heartbeat = settings.rate_limit_anonymous_heartbeat_per_minute
        self.console_per_minute = settings.rate_limit_console_per_minute
        self.playbook_execute = settings.rate_limit_playbook_execute_per_minute

    def is_service_credential(self, credential: str) -> bool:
        if self._service_digest is None or not credential.startswith(SERVICE_TOKEN_PREFIX):
            return False
        # Constant time over fixed-length digests: the length of the secret leaks nothing.
        return hmac.compare_digest(hashlib.sha256(credential.encode()).digest(),
                                   self._service_digest)

    def service_caller(self, credential: str, metadata: Mapping[str, str]) -> Identity:
        if not self.is_service_credential(credential):
            raise reject("invalid_key")
        propagated = propagated_identity(metadata)
        _successes("propagated" if propagated else "service").inc()
        return propagated or SERVICE_IDENTITY

    def caller(self, policy: MethodPolicy, address: str,
               verdict: Verdict | None) -> tuple[Identity, int, str]:
        """(identity, its limit for this RPC, kind) of a caller that presented a
        key (``verdict``, its verification) or none (None): anonymous, allowed
        only for heartbeats when MEDIC_ALLOW_ANONYMOUS_HEARTBEATS is set."""
        if verdict is None:
            if not (self.allow_anonymous and policy.rate_limit_class_name == "heartbeat"):
                raise reject("missing_key")
            return (Identity(principal=f"ip:{address}", name="anonymous"),
                    self.anonymous_heartbeat, "anonymous")
        grant = verdict.grant
        if grant is None:
            raise reject(verdict.reason or "invalid_key")
        if grant.expires_at is not None and time.time() >= grant.expires_at:
            raise reject("expired_key")
        if not has_scope(grant.scopes, policy.scope_name):
            raise reject("insufficient_scope", policy.scope_name)
        identity = Identity(principal=grant.principal, scopes=grant.scopes, name=grant.name)
        return (identity, limit_for(grant, policy.rate_limit_class_name, self.console_per_minute,
                                    self.playbook_execute), "key")

    @staticmethod
    def bucket(identity: Identity, policy: MethodPolicy) -> str:
        return ratelimit.bucket_name(identity.principal, policy.rate_limit_class_name)

    @staticmethod
    def counted(policy: MethodPolicy, status: RateLimitStatus, kind: str) -> RateLimitStatus:
        """The limiter's answer, or ResourceExhausted when it refused the call."""
        if not status.allowed:
            metrics.RATE_LIMITED.labels(policy.rate_limit_class_name).inc()
            raise ResourceExhausted(
                f"rate limit of {status.limit} {policy.rate_limit_class_name} requests per "
                f"minute exceeded; retry after {status.retry_after} s",
                trailers=status.trailers())
        _successes(kind).inc()
        return status
