"""Webhook subscriptions (the ``webhooks`` table): CRUD, and the current
settings of the subscriptions claimed deliveries go to."""
from __future__ import annotations

from collections.abc import Sequence

from psycopg2.extras import Json

from medic import audit
from medic.db import Database, Row, Tx
from medic.errors import NotFound

WEBHOOK_COLUMNS = "webhook_id, url, service_id, headers, secret, enabled, created_at, updated_at"

INSERT_WEBHOOK = f"""
    INSERT INTO webhooks (url, service_id, headers, secret, enabled)
    VALUES (%(url)s, %(service_id)s, %(headers)s, %(secret)s, %(enabled)s)
    RETURNING {WEBHOOK_COLUMNS}
"""
SELECT_WEBHOOK = f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = %s"
LIST_WEBHOOKS = f"""
    SELECT {WEBHOOK_COLUMNS} FROM webhooks
    WHERE (%(service_id)s::bigint IS NULL OR service_id = %(service_id)s)
    ORDER BY webhook_id
"""
LIST_WEBHOOKS_FOR_SERVICES = f"""
    SELECT {WEBHOOK_COLUMNS} FROM webhooks
    WHERE enabled AND (service_id IS NULL OR service_id = ANY(%s))
    ORDER BY webhook_id
"""
UPDATE_WEBHOOK = f"""
    UPDATE webhooks
    SET url = COALESCE(%(url)s, url),
        service_id = CASE WHEN %(set_service)s THEN %(service_id)s ELSE service_id END,
        headers = COALESCE(%(headers)s, headers),
        secret = CASE WHEN %(set_secret)s THEN %(secret)s ELSE secret END,
        enabled = COALESCE(%(enabled)s, enabled),
        updated_at = now()
    WHERE webhook_id = %(webhook_id)s
    RETURNING {WEBHOOK_COLUMNS}
"""
DELETE_WEBHOOK = f"DELETE FROM webhooks WHERE webhook_id = %s RETURNING {WEBHOOK_COLUMNS}"
SELECT_WEBHOOK_FOR_UPDATE = SELECT_WEBHOOK + " FOR UPDATE"
AUDITED = ("webhook_id", "url", "service_id", "headers", "secret", "enabled")
# The signing secret and the headers (credentials of the receiver) never reach the log.
SECRETS = ("secret", "headers")


def _audit(tx: Tx, action: str, before: Row | None, after: Row | None) -> None:
    row = after or before
    audit.record(tx, source="delivery", action_type=action, resource="webhook", resource_id=row["webhook_id"],
                 service_id=row["service_id"], secrets=SECRETS,
                 before=None if before is None else {k: before[k] for k in AUDITED},
                 after=None if after is None else {k: after[k] for k in AUDITED})
# What a claimed delivery of a subscription is sent with: its current settings.
SELECT_WEBHOOKS_BY_ID = """
    SELECT webhook_id, url, headers, secret, enabled FROM webhooks WHERE webhook_id = ANY(%s)
"""


class SubscriptionStore:
    def __init__(self, db: Database):
        self.db = db

    def create_webhook(self, url: str, service_id: int | None, headers: dict[str, str],
                       secret: str | None, enabled: bool) -> Row:
        with self.db.transaction() as tx:
            row = tx.one(INSERT_WEBHOOK, {"url": url, "service_id": service_id, "headers": Json(headers),
                                          "secret": secret, "enabled": enabled})
            _audit(tx, "create", None, row)
            return row

    def get_webhook(self, webhook_id: int) -> Row:
        row = self.db.one(SELECT_WEBHOOK, (webhook_id,))
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return row

    def list_webhooks(self, service_id: int | None = None) -> list[Row]:
        return self.db.all(LIST_WEBHOOKS, {"service_id": service_id})

    def list_webhooks_for_service(self, service_id: int) -> list[Row]:
        return self.list_webhooks_for_services([service_id])[0]

    def list_webhooks_for_services(self, service_ids: Sequence[int]) -> list[list[Row]]:
        """Per service id asked, in order: its enabled subscriptions and the global ones."""
        rows = self.db.all(LIST_WEBHOOKS_FOR_SERVICES, (sorted(set(service_ids)),))
        return [[r for r in rows if r["service_id"] in (None, service_id)] for service_id in service_ids]

    def update_webhook(self, webhook_id: int, *, url: str | None = None,
                       service_id: int | None = None, set_service: bool = False,
                       headers: dict[str, str] | None = None, secret: str | None = None,
                       set_secret: bool = False, enabled: bool | None = None) -> Row:
        """Changes what is given; `set_secret` replaces the secret with `secret`,
        None removing it (deliveries then go out unsigned)."""
        with self.db.transaction() as tx:
            before = tx.one(SELECT_WEBHOOK_FOR_UPDATE, (webhook_id,))
            if before is None:
                raise NotFound(f"webhook {webhook_id} not found")
            row = tx.one(UPDATE_WEBHOOK, {
                "webhook_id": webhook_id, "url": url, "set_service": set_service,
                "service_id": service_id, "headers": Json(headers) if headers is not None else None,
                "set_secret": set_secret, "secret": secret, "enabled": enabled})
            _audit(tx, "update", before, row)
            return row

    def delete_webhook(self, webhook_id: int) -> None:
        with self.db.transaction() as tx:
            row = tx.one(DELETE_WEBHOOK, (webhook_id,))
            if row is None:
                raise NotFound(f"webhook {webhook_id} not found")
            _audit(tx, "delete", row, None)

    @staticmethod
    def current(tx: Tx, webhook_ids: Sequence[int]) -> dict[int, Row]:
        """The subscriptions of these ids that still exist, by id, read in ``tx``."""
        if not webhook_ids:
            return {}
        return {w["webhook_id"]: w for w in tx.all(SELECT_WEBHOOKS_BY_ID, (list(webhook_ids),))}
