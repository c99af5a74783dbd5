"""Verifying a presented key against the database: the auth service's own verifier.

Authorize uses it directly: every answer reads the key's row (revocation,
expiry and overrides are always current, whichever auth replica revoked), so a
caller's cache TTL is the only delay before a revocation applies everywhere.
The expensive part, argon2, is remembered instead: a presented key that matched
its row's hash is not hashed again in this process while the row holds that hash
(a key's hash never changes; revocation, expiry and overrides are other columns,
read every time), however many processes ask, for up to CACHE_MAX_ENTRIES keys
(the longest remembered makes room). Hashing it again every TTL would give the
same answer for ~0.1 s of CPU per key in use per TTL: with a few hundred keys in
use, all of the auth service's CPU. The auth process's own interceptor puts a
``medic.authz.CachedVerifier`` in front of it, so the auth service never calls
itself.

A key not remembered costs argon2 only within the limits of
``services.auth.failures``: failed verifications per key id and client address,
and a bound on argon2 work at once. A remembered key skips both.
"""
from __future__ import annotations

import logging
import threading

from medic.authz import CACHE_MAX_ENTRIES, INVALID_KEY, KeyGrant, Verdict, key_digest, parse_key
from medic.config import Settings
from medic.errors import MedicError
from medic.db import Row
from services.auth import keys
from services.auth.failures import FailedVerifications
from services.auth.store import KeyStore

log = logging.getLogger(__name__)


def grant_from_row(row: Row, settings: Settings) -> KeyGrant:
    expires_at = row["expires_at"]
    return KeyGrant(
        key_id=row["key_id"], name=row["name"], scopes=frozenset(row["scopes"]),
        heartbeat_per_minute=(row["heartbeat_per_minute"]
                              or settings.rate_limit_heartbeat_per_minute),
        management_per_minute=(row["management_per_minute"]
                               or settings.rate_limit_management_per_minute),
        expires_at=expires_at.timestamp() if expires_at else None)


class LocalVerifier:
    def __init__(self, store: KeyStore, settings: Settings,
                 failures: FailedVerifications | None = None):
        self.store = store
        self.settings = settings
        self.failures = failures or FailedVerifications(settings)
        # SHA-256 of a presented key -> the hash it matched; the longest kept makes room
        self._matched: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def _matches(self, row: Row, key: str, digest: bytes, client_address: str) -> bool:
        if self._matched.get(digest) == row["key_hash"]:
            return True
        with self.failures.argon2_slot():
            matches = keys.key_matches(row["key_hash"], key)
        if not matches:
            self.failures.failed(row["key_id"], client_address)
            return False
        with self._lock:
            if digest not in self._matched and len(self._matched) >= CACHE_MAX_ENTRIES:
                self._matched.pop(next(iter(self._matched)))
            self._matched[digest] = row["key_hash"]
        return True

    def verify(self, key: str, client_address: str = "") -> Verdict:
        """``client_address``: the caller's client IP as its edge saw it ("" when
        unknown: then only the key id's failures are limited)."""
        # Malformed keys and unknown key ids end here, before any argon2 work.
        key_id = parse_key(key)
        if key_id is None:
            return INVALID_KEY
        digest = key_digest(key)
        if digest not in self._matched:  # not known good: may it cost argon2?
            self.failures.check(key_id, client_address)
        row = self.store.for_verification(key_id)
        if row is None or not self._matches(row, key, digest, client_address):
            return INVALID_KEY
        # Only a caller who holds the real key learns it is revoked or expired.
        if row["revoked_at"] is not None:
            return Verdict("revoked_key")
        if row["expires_at"] is not None and row["expires_at"] <= row["now"]:
            return Verdict("expired_key")
        try:
            self.store.touch_last_used(row)
        except MedicError as err:  # bookkeeping must not refuse a valid key
            log.warning("could not record last use of key %s: %s", key_id, err.message)
        return Verdict(None, grant_from_row(row, self.settings))
