"""API key material: generating ``mdk_<key_id>_<secret>`` and its argon2id hash.

The format (and the parser) is shared with every process in ``medic.authz``;
this module is the only one that creates keys or touches argon2.
"""
from __future__ import annotations

import secrets
import string
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medic.authz import KEY_PREFIX, parse_key
from services.auth import metrics

KEY_ID_ALPHABET = string.ascii_letters + string.digits
KEY_ID_LENGTH = 12
SECRET_BYTES = 32

# argon2-cffi's defaults: argon2id, RFC 9106 "low memory" profile (64 MiB per hash).
_hasher = PasswordHasher()
# At most this many hashes at once per process: bounds the memory and CPU a flood
# of well-formed keys with a real key id (each a cache miss) can take.
ARGON2_CONCURRENCY = 4
_argon2_slots = threading.BoundedSemaphore(ARGON2_CONCURRENCY)


def new_key() -> tuple[str, str]:
    """A fresh (key_id, plaintext key)."""
    key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    assert parse_key(key) == key_id
    return key_id, key


def hash_key(key: str) -> str:
    with _argon2_slots:
        return _hasher.hash(key)


def key_matches(key_hash: str, key: str) -> bool:
    """argon2id verification of the whole presented key (counted)."""
    metrics.ARGON2_VERIFICATIONS.inc()
    with _argon2_slots:
        try:
            return _hasher.verify(key_hash, key)
        except (VerificationError, InvalidHashError):
            return False
