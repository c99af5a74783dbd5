"""The audit log's reader: every service appends its events to ``audit_events``
(``medic.audit.record``); the heartbeat service answers the queries
(``ListAuditEvents``) and prunes old events (``retention``).

Each filter is a fixed SQL fragment; values are bound parameters. A service's
history is read through ``audit_events_service_idx`` (service_id, at DESC), an
actor's through one index per column it may be in (``ACTOR_COLUMNS``), so a
page costs index range scans whatever the size of the log. The total is exact
(the original counts too): an index-only count of what matches.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from medic import audit
from medic.db import Database, Row
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

    def where(self, actor_column: str | None = None) -> tuple[str, list]:
        """The WHERE clause and its values; ``actor_column``: the actor matched
        in that one column (of ACTOR_COLUMNS) only."""
        if self.action_type and self.action_type not in audit.ACTION_TYPES:
            raise invalid_action_type()
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InvalidArgument("start_date must not be after end_date")
        conditions, params = [], []
        for column, value in (("execution_id", self.execution_id), ("service_id", self.service_id),
                              ("action_type", self.action_type), ("resource", self.resource),
                              ("resource_id", self.resource_id)):
            if value:
                conditions.append(f"{column} = %s")
                params.append(value)
        if self.actor and actor_column in ACTOR_COLUMNS:
            conditions.append(f"{actor_column} = %s")
            params.append(self.actor)
        elif self.actor:
            # The X-Actor, the key's name or its id: whichever the asker knows.
            conditions.append("(actor = %s OR key_name = %s OR key_id = %s)")
            params += [self.actor] * 3
        if self.bulk_id:
            try:
                params.append(str(uuid.UUID(self.bulk_id)))
            except ValueError:
                raise InvalidArgument("bulk_id must be a UUID") from None
            conditions.append("bulk_id = %s")
        if self.start is not None:
            conditions.append("at >= %s")
            params.append(self.start)
        if self.end is not None:
            conditions.append("at <= %s")
            params.append(self.end)
        return ("WHERE " + " AND ".join(conditions)) if conditions else "", params


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    def events(self, query: AuditQuery) -> tuple[list[Row], int]:
        """One page of events, newest first, and how many match in all."""
        where, params = query.where()
        if query.actor:
            page, page_params = _actor_page(query)
        else:
            page = (f"SELECT {EVENT_COLUMNS} FROM audit_events {where}"
                    " ORDER BY at DESC, event_id DESC LIMIT %s OFFSET %s")
            page_params = [*params, query.limit, query.offset]
        tallied = not where or query == AuditQuery(actor=query.actor, limit=query.limit, offset=query.offset)
        with self.db.transaction() as tx:
            if tallied:
                # The mark, the tally and the events after the mark, in one snapshot.
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                sealed = tx.one("SELECT sealed_upto FROM audit_event_tally_mark")["sealed_upto"]
                total = tx.one(COUNT_ACTOR if query.actor else COUNT_ALL,
                               {"actor": query.actor, "sealed": sealed})["n"]
            else:
                total = tx.one(f"SELECT count(*) AS n FROM audit_events {where}", params)["n"]
            rows = tx.all(page, page_params)
        return rows, total

    def seal_tally(self, settle_seconds: float = 60.0) -> None:
        """Moves the tally's mark forward (retention calls it each pass): the
        candidate id of the last pass is sealed (its events tallied) when every
        transaction that was running when it was chosen has ended, and at least
        ``settle_seconds`` ago (an id is taken a moment before its transaction
        has an id of its own); then the newest id becomes the next candidate."""
        with self.db.transaction() as tx:
            mark = tx.one(LOCK_MARK, {"settle": settle_seconds})
            sealed = mark["sealed_upto"]
            if mark["settled"]:
                tx.execute(TALLY, {"after": sealed, "upto": mark["candidate"]})
                sealed = mark["candidate"]
            tx.execute(NEXT_CANDIDATE, {"sealed": sealed})


# The exact totals that need no filter but the actor's: the tally up to the mark
# (migration 022) and a count of the events after it (a short range of the
# primary key: the mark is given as a value, so that the plan knows it).
COUNT_ALL = """
    SELECT (SELECT coalesce(sum(events), 0)::bigint FROM audit_event_tally)
         + (SELECT count(*) FROM audit_events WHERE event_id > %(sealed)s) AS n
"""
COUNT_ACTOR = """
    SELECT (SELECT coalesce(sum(events), 0)::bigint FROM audit_event_tally
            WHERE actor = %(actor)s OR key_name = %(actor)s OR key_id = %(actor)s)
         + (SELECT count(*) FROM audit_events
            WHERE event_id > %(sealed)s AND (actor = %(actor)s OR key_name = %(actor)s OR key_id = %(actor)s)) AS n
"""
LOCK_MARK = """
    SELECT sealed_upto, candidate,
           candidate IS NOT NULL AND pg_snapshot_xmin(pg_current_snapshot()) >= candidate_xmax
           AND candidate_at <= now() - make_interval(secs => %(settle)s) AS settled
    FROM audit_event_tally_mark FOR UPDATE
"""
TALLY = """
    INSERT INTO audit_event_tally AS t (actor, key_name, key_id, events)
    SELECT coalesce(actor, ''), coalesce(key_name, ''), coalesce(key_id, ''), count(*) FROM audit_events
    WHERE event_id > %(after)s AND event_id <= %(upto)s GROUP BY 1, 2, 3
    ON CONFLICT (actor, key_name, key_id) DO UPDATE SET events = t.events + EXCLUDED.events
"""
NEXT_CANDIDATE = """
    UPDATE audit_event_tally_mark
    SET sealed_upto = %(sealed)s,
        candidate = (SELECT max(event_id) FROM audit_events WHERE event_id > %(sealed)s),
        candidate_xmax = pg_snapshot_xmax(pg_current_snapshot()), candidate_at = now()
"""
# Retention's batch: expired events, oldest first, taken out of the tally when
# it holds them (the mark locked against a concurrent seal); how many went.
DELETE_EXPIRED = """
    WITH mark AS (SELECT sealed_upto FROM audit_event_tally_mark FOR SHARE),
    gone AS (
        DELETE FROM audit_events WHERE event_id IN (
            SELECT event_id FROM audit_events WHERE at < now() - make_interval(days => %(days)s)
            ORDER BY at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
        RETURNING event_id, actor, key_name, key_id),
    tallied AS (
        SELECT coalesce(actor, '') AS actor, coalesce(key_name, '') AS key_name, coalesce(key_id, '') AS key_id,
               count(*) AS n
        FROM gone, mark WHERE gone.event_id <= mark.sealed_upto GROUP BY 1, 2, 3),
    untallied AS (
        UPDATE audit_event_tally t SET events = t.events - tallied.n FROM tallied
        WHERE (t.actor, t.key_name, t.key_id) = (tallied.actor, tallied.key_name, tallied.key_id))
    SELECT count(*) AS n FROM gone
"""


# Where an actor filter looks (audit_events_actor_idx, _key_name_idx, _key_id_idx).
ACTOR_COLUMNS = ("actor", "key_name", "key_id")


def _actor_page(query: AuditQuery) -> tuple[str, list]:
    """A page of an actor's events: the newest ``offset + limit`` of each
    column's index, merged. One ``OR`` over three columns would read and sort
    every event of a busy key before the first page."""
    branches, params = [], []
    for column in ACTOR_COLUMNS:
        where, values = query.where(actor_column=column)
        branches.append(f"(SELECT event_id, at FROM audit_events {where} ORDER BY at DESC, event_id DESC LIMIT %s)")
        params += [*values, query.offset + query.limit]
    sql = f"""
        SELECT {EVENT_COLUMNS} FROM audit_events WHERE event_id IN (
            SELECT event_id FROM ({" UNION ".join(branches)}) AS matched
            ORDER BY at DESC, event_id DESC LIMIT %s OFFSET %s)
        ORDER BY at DESC, event_id DESC
    """
    return sql, [*params, query.limit, query.offset]
