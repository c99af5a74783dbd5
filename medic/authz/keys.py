"""The credentials: API keys (``mdk_<key_id>_<secret>``), the service
credential (``mds_...``), and what the auth service answers about a key.

Only the auth service can tell whether a key is valid (it keeps an argon2id
hash); everything here is format and values, no I/O.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from medic import enums
from medic.config import ConfigError, Settings
from medic.v1 import auth_pb2

KEY_PREFIX = "mdk_"
SERVICE_TOKEN_PREFIX = "mds_"
# key_id: 12 x [A-Za-z0-9] (no "_", so the split is unambiguous); secret: 32 bytes,
# URL-safe base64 without padding (43 characters).
KEY_PATTERN = re.compile(r"mdk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})")
SERVICE_TOKEN_PATTERN = re.compile(r"mds_[A-Za-z0-9_-]{43}")

SCOPES = enums.SCOPE.choices
SCOPE_TO_PB = enums.SCOPE.numbers
SCOPE_FROM_PB = enums.SCOPE.names

# Why a key was refused (a Verdict's reason): every verdict but VALID.
_VERDICT_FROM_PB = {number: name for number, name in enums.AUTHORIZE_VERDICT.names.items()
                    if number != auth_pb2.AUTHORIZE_VERDICT_VALID}
_VERDICT_TO_PB = {v: k for k, v in _VERDICT_FROM_PB.items()}


def parse_key(key: str) -> str | None:
    """The key id of a well-formed API key, else None."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def bearer_token(value: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` value."""
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""  # present but unusable: an invalid key, not a missing one
    return credential.strip()


def http_credential(value: str | None) -> str | None:
    """The API key of an HTTP ``Authorization`` header: ``Bearer <key>``, or HTTP Basic
    credentials carrying the key as the user name or the password, for legacy clients
    that cannot set headers but can put ``https://medic:KEY@host`` in their base URL."""
    if value and value.strip()[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(value.strip()[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""  # present but unusable: an invalid key
        return user if user.startswith(KEY_PREFIX) or not password else password
    return bearer_token(value)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class KeyGrant:
    """What a valid key may do: the cached answer of ``Authorize``."""
    key_id: str
    name: str
    scopes: frozenset[str]
    heartbeat_per_minute: int
    management_per_minute: int
    expires_at: float | None = None   # unix seconds

    @property
    def principal(self) -> str:
        return f"key:{self.key_id}"


@dataclass(frozen=True)
class Verdict:
    """``reason`` is None for a usable key (then ``grant`` is set), else one of
    invalid_key, expired_key, revoked_key."""
    reason: str | None
    grant: KeyGrant | None = None


INVALID_KEY = Verdict("invalid_key")


def verdict_to_pb(verdict: Verdict) -> auth_pb2.AuthorizeResponse:
    if verdict.grant is None:
        return auth_pb2.AuthorizeResponse(verdict=_VERDICT_TO_PB[verdict.reason or "invalid_key"])
    g = verdict.grant
    response = auth_pb2.AuthorizeResponse(
        verdict=auth_pb2.AUTHORIZE_VERDICT_VALID, key_id=g.key_id, name=g.name,
        scopes=sorted(SCOPE_TO_PB[s] for s in g.scopes),
        rate_limits=auth_pb2.EffectiveRateLimits(heartbeat_per_minute=g.heartbeat_per_minute,
                                                 management_per_minute=g.management_per_minute))
    if g.expires_at is not None:
        response.expires_at.FromNanoseconds(int(g.expires_at * 1e9))
    return response


def verdict_from_pb(response: auth_pb2.AuthorizeResponse) -> Verdict:
    if response.verdict != auth_pb2.AUTHORIZE_VERDICT_VALID:
        return Verdict(_VERDICT_FROM_PB.get(response.verdict, "invalid_key"))
    expires_at = (response.expires_at.ToNanoseconds() / 1e9
                  if response.HasField("expires_at") else None)
    return Verdict(None, KeyGrant(
        key_id=response.key_id, name=response.name,
        scopes=frozenset(SCOPE_FROM_PB[s] for s in response.scopes if s in SCOPE_FROM_PB),
        heartbeat_per_minute=response.rate_limits.heartbeat_per_minute,
        management_per_minute=response.rate_limits.management_per_minute,
        expires_at=expires_at))


def service_credential_metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Metadata carrying this process's service credential, for ``ClientInterceptor``."""
    if not settings.service_token:
        return ()
    return (("authorization", f"Bearer {settings.service_token}"),)


def require_service_token(settings: Settings) -> None:
    if not SERVICE_TOKEN_PATTERN.fullmatch(settings.service_token or ""):
        raise ConfigError("MEDIC_SERVICE_TOKEN must be set to the service credential "
                          "(mds_ followed by 43 URL-safe characters) to verify API keys")
