"""The auth domain's table: api_keys. All SQL of the domain lives here."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from medic import audit
from medic.db import Database, Row, Tx
from medic.errors import FailedPrecondition, NotFound

KEY_COLUMNS = """
    key_id, name, scopes, heartbeat_per_minute, management_per_minute, created_at,
    expires_at, revoked_at, last_used_at
"""

INSERT_KEY = f"""
    INSERT INTO api_keys (key_id, name, key_hash, scopes, heartbeat_per_minute,
                          management_per_minute, expires_at)
    VALUES (%(key_id)s, %(name)s, %(key_hash)s, %(scopes)s, %(heartbeat_per_minute)s,
            %(management_per_minute)s, %(expires_at)s)
    RETURNING {KEY_COLUMNS}
"""

SELECT_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"

SELECT_KEY_FOR_VERIFICATION = f"""
    SELECT {KEY_COLUMNS}, key_hash, now() AS now FROM api_keys WHERE key_id = %s
"""

# Revoking twice keeps the first revocation time.
REVOKE_KEY = f"""
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s
    RETURNING {KEY_COLUMNS}
"""

# A flag per column says whether to change it; 0 clears the override (NULL).
SET_RATE_LIMITS = f"""
    UPDATE api_keys SET
        heartbeat_per_minute = CASE WHEN %(set_heartbeat)s
            THEN nullif(%(heartbeat_per_minute)s, 0) ELSE heartbeat_per_minute END,
        management_per_minute = CASE WHEN %(set_management)s
            THEN nullif(%(management_per_minute)s, 0) ELSE management_per_minute END
    WHERE key_id = %(key_id)s
    RETURNING {KEY_COLUMNS}
"""

# At most one write per key per minute, whatever the number of processes.
TOUCH_LAST_USED = """
    UPDATE api_keys SET last_used_at = now()
    WHERE key_id = %s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""

# Serializes everything that decides whether an active admin key is left: concurrent
# bootstraps (several auth replicas starting at once) and revocations (two admins
# revoking each other at once would otherwise both see the other one still active).
LOCK_ADMIN_KEYS = "SELECT pg_advisory_xact_lock(hashtext('medic.auth.bootstrap'))"
ACTIVE_ADMIN = "'admin' = ANY(scopes) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
ANY_ACTIVE_ADMIN_KEY = f"SELECT EXISTS (SELECT 1 FROM api_keys WHERE {ACTIVE_ADMIN}) AS present"
# Whether revoking key %(key_id)s would leave no active admin key.
IS_LAST_ACTIVE_ADMIN = f"""
    SELECT ({ACTIVE_ADMIN}) AND NOT EXISTS (
               SELECT 1 FROM api_keys other WHERE other.key_id <> api_keys.key_id
               AND 'admin' = ANY(other.scopes) AND other.revoked_at IS NULL
               AND (other.expires_at IS NULL OR other.expires_at > now())) AS last
    FROM api_keys WHERE key_id = %s
"""

SELECT_KEY_FOR_UPDATE = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = %s FOR UPDATE"

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

# A key as the audit log shows it: never the key or its hash, nor its last use.
AUDITED = ("key_id", "name", "scopes", "heartbeat_per_minute", "management_per_minute", "expires_at",
           "revoked_at")


def _audit(tx: Tx, action: str, key_id: str, before: Row | None, after: Row | None,
           who: audit.Who | None = None) -> None:
    audit.record(tx, source="auth", action_type=action, resource="api_key", resource_id=key_id,
                 before=None if before is None else {k: before[k] for k in AUDITED},
                 after=None if after is None else {k: after[k] for k in AUDITED}, who=who)


class KeyStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, *, key_id: str, name: str, key_hash: str, scopes: list[str],
               heartbeat_per_minute: int | None, management_per_minute: int | None,
               expires_at: dt.datetime | None) -> Row:
        with self.db.transaction() as tx:
            row = tx.one(INSERT_KEY, dict(
                key_id=key_id, name=name, key_hash=key_hash, scopes=scopes,
                heartbeat_per_minute=heartbeat_per_minute,
                management_per_minute=management_per_minute, expires_at=expires_at))
            _audit(tx, "create", key_id, None, row)
            return row

    def create_admin_if_none(self, before_commit: Callable[[], None], **fields) -> Row | None:
        """Creates the key only when no active admin key exists (bootstrap, and the
        recovery when every admin key expired); None otherwise. ``before_commit``
        runs once the key is inserted, inside the transaction: if it fails, no key
        is created."""
        with self.db.transaction() as tx:
            tx.one(LOCK_ADMIN_KEYS)
            if tx.one(ANY_ACTIVE_ADMIN_KEY)["present"]:
                return None
            row = tx.one(INSERT_KEY, fields)
            # Made by `medic bootstrap-admin` or a starting auth service, not by a caller.
            _audit(tx, "create", row["key_id"], None, row, who=audit.SYSTEM)
            before_commit()
            return row

    def any_active_admin_key(self) -> bool:
        return self.db.one(ANY_ACTIVE_ADMIN_KEY)["present"]

    def list(self) -> list[Row]:
        return self.db.all(SELECT_KEYS)

    def for_verification(self, key_id: str) -> Row | None:
        return self.db.one(SELECT_KEY_FOR_VERIFICATION, (key_id,))

    def revoke(self, key_id: str) -> Row:
        """Revokes a key, unless it is the last active admin key: without one, no
        key could be created, revoked or changed any more through the API."""
        with self.db.transaction() as tx:
            tx.one(LOCK_ADMIN_KEYS)
            last = tx.one(IS_LAST_ACTIVE_ADMIN, (key_id,))
            if last is None:
                raise NotFound(f"API key {key_id} not found")
            if last["last"]:
                raise FailedPrecondition(
                    f"API key {key_id} is the last active admin key; revoking it would leave "
                    "nobody able to manage API keys. Create another admin key first "
                    "(if every admin key is lost, `medic bootstrap-admin` creates one)")
            before = tx.one(SELECT_KEY_FOR_UPDATE, (key_id,))
            row = tx.one(REVOKE_KEY, (key_id,))
            _audit(tx, "revoke", key_id, before, row)
            return row

    def set_rate_limits(self, key_id: str, *, heartbeat_per_minute: int | None,
                        management_per_minute: int | None) -> Row:
        with self.db.transaction() as tx:
            before = tx.one(SELECT_KEY_FOR_UPDATE, (key_id,))
            if before is None:
                raise NotFound(f"API key {key_id} not found")
            row = tx.one(SET_RATE_LIMITS, dict(
                key_id=key_id,
                set_heartbeat=heartbeat_per_minute is not None,
                heartbeat_per_minute=heartbeat_per_minute or 0,
                set_management=management_per_minute is not None,
                management_per_minute=management_per_minute or 0))
            _audit(tx, "set_rate_limits", key_id, before, row)
            return row

    def touch_last_used(self, row: Row) -> None:
        """Records a use, unless one was recorded less than a minute ago."""
        last = row["last_used_at"]
        if last is not None and row["now"] - last < LAST_USED_RESOLUTION:
            return
        self.db.execute(TOUCH_LAST_USED, (row["key_id"],))

