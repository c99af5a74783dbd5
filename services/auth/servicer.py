"""AuthService: converts protobuf <-> domain values and validates requests.

Errors are raised as ``medic.errors`` types; the shared interceptor maps them
to status codes. Keys and hashes never leave this module except the plaintext
in CreateApiKeyResponse, once.
"""
from __future__ import annotations

import datetime as dt
import logging


from medic.authz import SCOPE_FROM_PB, SCOPE_TO_PB, SERVICE_PRINCIPAL, CachedVerifier, verdict_to_pb
from medic.db import Row
from medic.errors import Conflict, InvalidArgument, PermissionDenied
from medic.interceptors import current_identity
from medic.timestamps import to_timestamp
from medic.v1 import auth_pb2, auth_pb2_grpc
from services.auth import keys, metrics
from services.auth.store import KeyStore
from services.auth.verifier import LocalVerifier

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 255
_CREATE_ATTEMPTS = 3  # a 12-character key id collides practically never


def api_key_to_pb(row: Row) -> auth_pb2.ApiKey:
    limits = auth_pb2.RateLimitOverrides()
    if row["heartbeat_per_minute"] is not None:
        limits.heartbeat_per_minute = row["heartbeat_per_minute"]
    if row["management_per_minute"] is not None:
        limits.management_per_minute = row["management_per_minute"]
    return auth_pb2.ApiKey(
        key_id=row["key_id"], name=row["name"],
        scopes=[SCOPE_TO_PB[s] for s in row["scopes"]],
        created_at=to_timestamp(row["created_at"]), expires_at=to_timestamp(row["expires_at"]),
        revoked_at=to_timestamp(row["revoked_at"]), last_used_at=to_timestamp(row["last_used_at"]),
        rate_limits=limits)


def _scopes(values) -> list[str]:
    if not values:
        raise InvalidArgument("scopes: at least one of read, write, admin is required")
    names = []
    for value in values:
        if value not in SCOPE_FROM_PB:
            raise InvalidArgument("scopes: each must be SCOPE_READ, SCOPE_WRITE or SCOPE_ADMIN")
        if SCOPE_FROM_PB[value] not in names:
            names.append(SCOPE_FROM_PB[value])
    return names


def _override(limits: auth_pb2.RateLimitOverrides, field: str, *, allow_zero: bool) -> int | None:
    if not limits.HasField(field):
        return None
    value = getattr(limits, field)
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgument(f"rate_limits.{field}: must be >= {0 if allow_zero else 1}")
    return value


def _key_id(value: str) -> str:
    if not value:
        raise InvalidArgument("key_id is required")
    return value


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """``local`` answers Authorize (always current); ``verifier`` is the cached one
    this process's interceptor uses, invalidated here on changes."""

    def __init__(self, store: KeyStore, local: LocalVerifier, verifier: CachedVerifier):
        self.store = store
        self.local = local
        self.verifier = verifier

    def CreateApiKey(self, request, context):
        name = request.name.strip()
        if not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise InvalidArgument(f"name: 1-{MAX_NAME_LENGTH} characters required")
        scopes = _scopes(request.scopes)
        expires_at = None
        if request.HasField("expires_at"):
            expires_at = request.expires_at.ToDatetime(tzinfo=dt.timezone.utc)
            if expires_at <= dt.datetime.now(dt.timezone.utc):
                raise InvalidArgument("expires_at: must be in the future")
        limits = request.rate_limits
        fields = dict(
            name=name, scopes=scopes, expires_at=expires_at,
            # 0, as in SetRateLimits, means "no override".
            heartbeat_per_minute=_override(limits, "heartbeat_per_minute", allow_zero=True) or None,
            management_per_minute=_override(limits, "management_per_minute", allow_zero=True) or None)
        for attempt in range(_CREATE_ATTEMPTS):
            key_id, key = keys.new_key()
            try:
                row = self.store.create(key_id=key_id, key_hash=keys.hash_key(key), **fields)
                break
            except Conflict:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
        metrics.API_KEYS_CREATED.inc()
        log.info("API key %s (%s) created with scopes %s", key_id, name, ",".join(scopes))
        return auth_pb2.CreateApiKeyResponse(api_key=api_key_to_pb(row), key=key)

    def ListApiKeys(self, request, context):
        return auth_pb2.ListApiKeysResponse(api_keys=[api_key_to_pb(r) for r in self.store.list()])

    def RevokeApiKey(self, request, context):
        key_id = _key_id(request.key_id)
        row = self.store.revoke(key_id)
        # This process stops accepting it now; the others within their cache TTL.
        self.verifier.invalidate_key_id(key_id)
        metrics.API_KEYS_REVOKED.inc()
        log.info("API key %s revoked", key_id)
        return auth_pb2.RevokeApiKeyResponse(api_key=api_key_to_pb(row))

    def SetRateLimits(self, request, context):
        key_id = _key_id(request.key_id)
        limits = request.rate_limits
        row = self.store.set_rate_limits(
            key_id,
            heartbeat_per_minute=_override(limits, "heartbeat_per_minute", allow_zero=True),
            management_per_minute=_override(limits, "management_per_minute", allow_zero=True))
        self.verifier.invalidate_key_id(key_id)
        log.info("rate limits of API key %s set", key_id)
        return auth_pb2.SetRateLimitsResponse(api_key=api_key_to_pb(row))

    def Authorize(self, request, context):
        # Only Medic processes (service credential, no propagated identity) may ask:
        # otherwise any key holder could use this RPC to test keys.
        if current_identity().principal != SERVICE_PRINCIPAL:
            raise PermissionDenied("Authorize answers Medic processes only")
        return verdict_to_pb(self.local.verify(request.key, request.client_address))
