"""First start of an installation: the service credential and the first admin key.

The launcher (``medic up``) calls, before starting the processes:

* ``ensure_service_token(settings)`` -> the service credential: MEDIC_SERVICE_TOKEN
  when set, else the one in ``$MEDIC_DATA_DIR/service.token``, created (mode
  0600) on the first call. The launcher passes it to every Medic process as
  MEDIC_SERVICE_TOKEN. Never print or log it.
* ``bootstrap_admin_key(settings, db)`` (database migrated) -> the plaintext of
  a new admin key when no active admin key exists (the first start, or every
  admin key expired or was revoked by hand in the database), else None. The key is also written to
  ``$MEDIC_DATA_DIR/admin.key`` (0600) before it is committed; the launcher
  prints it once. It may make 300 management requests a minute (an override).

Both are idempotent: a restart finds the token file and an active admin key and
creates nothing. Concurrent starts are serialized by an advisory lock (the one
revocation takes, so the last active admin key cannot be revoked either).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from medic.authz import SERVICE_TOKEN_PATTERN, SERVICE_TOKEN_PREFIX
from medic.config import ConfigError, Settings
from medic.db import Database
from services.auth import keys
from services.auth.store import KeyStore

SERVICE_TOKEN_FILE = "service.token"
ADMIN_KEY_FILE = "admin.key"
BOOTSTRAP_KEY_NAME = "bootstrap-admin"
# The bootstrap key is a person's (the CLI uses it next to `medic up`): the default
# management limit, 20 a minute, is used up by a few minutes of setting up. Its
# override can be changed like any other (`medic keys set-limits`).
BOOTSTRAP_MANAGEMENT_PER_MINUTE = 300


def write_secret(path: Path, value: str) -> None:
    """Writes a secret readable by the owner only (atomically, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (value + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_service_token(settings: Settings) -> str:
    if settings.service_token:
        if not SERVICE_TOKEN_PATTERN.fullmatch(settings.service_token):
            raise ConfigError("MEDIC_SERVICE_TOKEN=***: expected mds_ followed by 43 URL-safe "
                              "characters (delete it to let `medic up` generate one)")
        return settings.service_token
    path = Path(settings.data_dir) / SERVICE_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if SERVICE_TOKEN_PATTERN.fullmatch(token):
            return token
        raise ConfigError(f"{path} does not hold a service credential; delete it to regenerate")
    token = SERVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    write_secret(path, token)
    return token


def bootstrap_admin_key(settings: Settings, db: Database) -> str | None:
    store = KeyStore(db)
    if store.any_active_admin_key():  # the usual restart: no hashing, no lock
        return None
    key_id, key = keys.new_key()
    # The file is written before the key is committed: a crash or a full disk in
    # between leaves no admin key that nobody holds (the next start makes another).
    row = store.create_admin_if_none(
        lambda: write_secret(Path(settings.data_dir) / ADMIN_KEY_FILE, key),
        key_id=key_id, name=BOOTSTRAP_KEY_NAME, key_hash=keys.hash_key(key), scopes=["admin"],
        heartbeat_per_minute=None, management_per_minute=BOOTSTRAP_MANAGEMENT_PER_MINUTE,
        expires_at=None)
    return None if row is None else key
