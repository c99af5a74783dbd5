"""Step secrets, encrypted at rest with AES-256-GCM (``cryptography``'s AESGCM).

The key is MEDIC_SECRETS_KEY: 32 bytes, base64 (``medic up`` generates one into
``$MEDIC_DATA_DIR/secrets.key``, mode 0600). Each secret is sealed with a fresh
96-bit nonce, and its name as associated data (a ciphertext moved to another
name does not open). A row records which key sealed it by ``key_id``, a digest
of the key (never the key). Rotation (docs/remediation.md): set the new key as
MEDIC_SECRETS_KEY and the old one in MEDIC_SECRETS_PREVIOUS_KEYS, restart, run
``medic secrets rotate`` (``SecretStore.rotate``: every secret sealed under
another key is opened and sealed again under the current one), then drop the
old key.

A value is only ever returned to the engine, which substitutes it into a step
and redacts it from what the step recorded; no RPC answers it, no log line or
event carries it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medic import audit
from medic.config import ConfigError
from medic.db import Database, Row, Tx
from medic.errors import FailedPrecondition, InvalidArgument, NotFound

NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def generate_key() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _decode(text: str, variable: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{variable} must be 32 bytes in base64 (e.g. from `medic secrets generate-key`)")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"medic-secrets-key:" + key).hexdigest()[:16]


class Keyring:
    """The current key (sealing) and earlier ones (opening only)."""

    def __init__(self, current: str, previous: str = ""):
        self.current = _decode(current, "MEDIC_SECRETS_KEY") if current else None
        self.keys = {}
        for text in [p for p in previous.split(",") if p.strip()]:
            key = _decode(text, "MEDIC_SECRETS_PREVIOUS_KEYS")
            self.keys[key_id(key)] = key
        if self.current is not None:
            self.keys[key_id(self.current)] = self.current

    def seal(self, name: str, value: str) -> tuple[bytes, bytes, str]:
        if self.current is None:
            raise FailedPrecondition("secrets need MEDIC_SECRETS_KEY (medic up generates one)")
        nonce = os.urandom(12)
        return nonce, AESGCM(self.current).encrypt(nonce, value.encode(), name.encode()), key_id(self.current)

    def open(self, name: str, nonce: bytes, ciphertext: bytes, sealed_by: str) -> str:
        key = self.keys.get(sealed_by)
        if key is None:
            raise FailedPrecondition(f"secret {name!r} was sealed with a key Medic does not have "
                                     "(set it in MEDIC_SECRETS_PREVIOUS_KEYS)")
        try:
            return AESGCM(key).decrypt(bytes(nonce), bytes(ciphertext), name.encode()).decode()
        except InvalidTag:
            raise FailedPrecondition(f"secret {name!r} does not open with its key (corrupted?)") from None


def _audit(tx: Tx, action: str, before: dict | None, after: dict | None) -> None:
    audit.record(tx, source="remediation", action_type=action, resource="secret", resource_id=(after or before)["name"],
                 before=before, after=after, secrets=("value",))


class SecretStore:
    def __init__(self, db: Database, keyring: Keyring):
        self.db = db
        self.keyring = keyring

    def put(self, name: str, value: str) -> Row:
        if not NAME.match(name):
            raise InvalidArgument("name must be 1-64 letters, digits or _")
        if not value:
            raise InvalidArgument("value is required")
        nonce, ciphertext, sealed_by = self.keyring.seal(name, value)
        with self.db.transaction() as tx:
            row = tx.one("""
                INSERT INTO remediation_secrets (name, nonce, ciphertext, key_id)
                VALUES (%(n)s, %(nonce)s, %(c)s, %(k)s)
                ON CONFLICT (name) DO UPDATE SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                    key_id = EXCLUDED.key_id, updated_at = now()
                RETURNING name, created_at, updated_at, xmax = 0 AS created""",
                         {"n": name, "nonce": nonce, "c": ciphertext, "k": sealed_by})
            # The value itself never reaches the log: only that it changed (medic.audit.redact).
            _audit(tx, "create" if row["created"] else "update", None if row["created"] else {"name": name},
                   {"name": name, "value": value})
        return row

    def list(self) -> list[Row]:
        return self.db.all("SELECT name, created_at, updated_at FROM remediation_secrets ORDER BY name")

    def delete(self, name: str) -> None:
        with self.db.transaction() as tx:
            if not tx.execute("DELETE FROM remediation_secrets WHERE name = %(n)s", {"n": name}):
                raise NotFound(f"no secret named {name!r}")
            _audit(tx, "delete", {"name": name}, None)

    def value(self, name: str) -> str | None:
        """The secret's value (for the engine only); None when there is none."""
        row = self.db.one("SELECT nonce, ciphertext, key_id FROM remediation_secrets WHERE name = %(n)s", {"n": name})
        if row is None:
            return None
        return self.keyring.open(name, row["nonce"], row["ciphertext"], row["key_id"])

    def rotate(self) -> int:
        """Seals every secret sealed under another key again under the current
        key; returns how many. Each row is re-sealed in its own statement,
        conditional on its key, so running it twice (or alongside a put) is safe."""
        if self.keyring.current is None:
            raise FailedPrecondition("MEDIC_SECRETS_KEY is not set")
        current = key_id(self.keyring.current)
        rows = self.db.all("SELECT name, nonce, ciphertext, key_id FROM remediation_secrets WHERE key_id <> %(k)s",
                           {"k": current})
        for row in rows:
            value = self.keyring.open(row["name"], row["nonce"], row["ciphertext"], row["key_id"])
            nonce, ciphertext, sealed_by = self.keyring.seal(row["name"], value)
            self.db.execute("""
                UPDATE remediation_secrets SET nonce = %(nonce)s, ciphertext = %(c)s, key_id = %(k)s, updated_at = now()
                WHERE name = %(n)s AND key_id = %(old)s""",
                            {"nonce": nonce, "c": ciphertext, "k": sealed_by, "n": row["name"], "old": row["key_id"]})
        return len(rows)
