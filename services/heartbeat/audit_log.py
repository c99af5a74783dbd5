"""The audit log's reader: every service appends its events to ``audit_events``
(``medic.audit.record``); the heartbeat service answers the queries
(``ListAuditEvents``) and prunes old events (``retention``).

Each filter is a fixed SQL fragment; values are bound parameters. A service's
history is read through ``audit_events_service_idx`` (service_id, at DESC), so
a page costs an index range scan whatever the size of the log.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from medic import audit
from medic.db import Database, Row, Where
from medic.errors import InvalidArgument

MAX_PAGE = 250
DEFAULT_PAGE = 50

EVENT_COLUMNS = """
    event_id, at, source, action_type, resource, resource_id, service_id, execution_id, principal,
    key_id, key_name, actor, request_id, bulk_id, before, after, details
"""


def invalid_action_type() -> InvalidArgument:
    return InvalidArgument(f"Invalid action_type. Must be one of: {', '.join(audit.ACTION_TYPES)}")


@dataclass(frozen=True)
class AuditQuery:
    execution_id: int = 0
    service_id: int = 0
    action_type: str = ""
    actor: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    resource: str = ""
    resource_id: str = ""
    bulk_id: str = ""
    limit: int = DEFAULT_PAGE
    offset: int = 0

    def where(self) -> Where:
        if self.action_type and self.action_type not in audit.ACTION_TYPES:
            raise invalid_action_type()
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InvalidArgument("start_date must not be after end_date")
        where = Where()
        for column, value in (("execution_id", self.execution_id), ("service_id", self.service_id),
                              ("action_type", self.action_type), ("resource", self.resource),
                              ("resource_id", self.resource_id)):
            where.equal(column, value)
        if self.actor:
            # The X-Actor, the key's name or its id: whichever the asker knows.
            where.add("(actor = %s OR key_name = %s OR key_id = %s)", *[self.actor] * 3)
        where.equal_uuid("bulk_id", self.bulk_id)
        where.between("at", self.start, self.end)
        return where


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    def events(self, query: AuditQuery) -> tuple[list[Row], int]:
        """One page of events, newest first, and how many match in all."""
        return query.where().page(self.db, "audit_events", EVENT_COLUMNS, "at DESC, event_id DESC",
                                  query.limit, query.offset)
