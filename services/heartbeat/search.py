"""Reads for people looking at many services at once (the web console): a
service search with counts, recent transitions across services, a heartbeat
timeline and an alert search. Read-only SQL across the heartbeat domain's
aggregates (services, their transitions and events, alerts), so it is a module of
its own beside the stores that write them; the strings it matches come from the
modules that define them (``medic.enums``, ``lifecycle``, ``status``).

Every filter and order is a fixed SQL fragment chosen by an enum, never text
from the request; values are bound parameters.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from medic import enums
from medic.db import Database, Row
from medic.errors import InvalidArgument, NotFound
from medic.v1 import heartbeat_pb2
from services.heartbeat import service_counts
from services.heartbeat.lifecycle import ServiceState
from services.heartbeat.service_store import SERVICE_COLUMNS
from services.heartbeat.status import FAILURE_STATUSES_PARAM

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_QUERY_LENGTH = 255
MAX_RECENT_TRANSITIONS = 500
DEFAULT_RECENT_TRANSITIONS = 50
DEFAULT_TIMELINE_WINDOW = 86400
MAX_TIMELINE_WINDOW = 7 * 86400
MIN_TIMELINE_WINDOW = 60
DEFAULT_TIMELINE_BUCKETS = 96
MAX_TIMELINE_BUCKETS = 1440

# What each condition means, in SQL (see ServiceCondition in heartbeat.proto).
CONDITIONS = {
    heartbeat_pb2.SERVICE_CONDITION_UP: f"active AND state = '{ServiceState.UP}'",
    heartbeat_pb2.SERVICE_CONDITION_DOWN: f"active AND state = '{ServiceState.DOWN}'",
    heartbeat_pb2.SERVICE_CONDITION_NEW: f"active AND state = '{ServiceState.NEW}'",
    heartbeat_pb2.SERVICE_CONDITION_MUTED: "active AND muted",
    heartbeat_pb2.SERVICE_CONDITION_INACTIVE: "NOT active",
}

# (ascending, descending) ORDER BY of each sort; service_id breaks ties.
_STATE_RANK = f"CASE state WHEN '{ServiceState.DOWN}' THEN 0 WHEN '{ServiceState.NEW}' THEN 1 ELSE 2 END"
ORDERS = {
    heartbeat_pb2.SERVICE_SORT_UNSPECIFIED: ("lower(heartbeat_name)", "lower(heartbeat_name) DESC"),
    heartbeat_pb2.SERVICE_SORT_NAME: ("lower(heartbeat_name)", "lower(heartbeat_name) DESC"),
    heartbeat_pb2.SERVICE_SORT_STATE: (f"{_STATE_RANK}, lower(heartbeat_name)",
                                       f"{_STATE_RANK} DESC, lower(heartbeat_name)"),
    heartbeat_pb2.SERVICE_SORT_LAST_HEARTBEAT: ("last_heartbeat_at DESC NULLS LAST, service_id",
                                                "last_heartbeat_at ASC NULLS LAST, service_id"),
    heartbeat_pb2.SERVICE_SORT_DEADLINE: ("deadline_at ASC NULLS LAST, service_id",
                                          "deadline_at DESC NULLS LAST, service_id"),
}

PRIORITIES = enums.PRIORITY.names

# A name search matches a substring of either name, case-insensitively.
_QUERY_MATCH = """(strpos(lower(heartbeat_name), lower(%(query)s)) > 0
                   OR strpos(lower(service_name), lower(%(query)s)) > 0)"""
_FILTERS = """
    AND (%(team)s = '' OR team = %(team)s)
    AND (%(priority)s = '' OR priority = %(priority)s)
    AND (%(active)s::boolean IS NULL OR active = %(active)s::boolean)
    AND {condition}
"""
_MATCH = f"(%(query)s = '' OR {_QUERY_MATCH}) {_FILTERS}"
# A query of at least this many characters has trigrams for the index to use.
TRIGRAM = 3

# The kept count (service_counts) of the services in each condition; unspecified: all.
KEPT_COUNT = {
    heartbeat_pb2.SERVICE_CONDITION_UNSPECIFIED: "total",
    heartbeat_pb2.SERVICE_CONDITION_UP: "up",
    heartbeat_pb2.SERVICE_CONDITION_DOWN: "down",
    heartbeat_pb2.SERVICE_CONDITION_NEW: "new",
    heartbeat_pb2.SERVICE_CONDITION_MUTED: "muted",
    heartbeat_pb2.SERVICE_CONDITION_INACTIVE: "inactive",
}
COUNT_MATCHING = f"SELECT count(*) AS matching FROM services WHERE {_MATCH}"
SEARCH_PAGE = f"""
    SELECT {SERVICE_COLUMNS} FROM services WHERE {_MATCH}
    ORDER BY {{order}} LIMIT %(limit)s OFFSET %(offset)s
"""

# With a text query one pass selects the matches, counts them and returns one
# page. A service whose names contain the query holds every trigram of it, so
# the trigram index (migration 016) first finds the candidates; when they are
# few (a specific name) only they are read and checked, else (a query too short
# for a trigram, or one most names contain) every service is read.
MAX_CANDIDATES = 1000
CANDIDATES = """
    SELECT service_id FROM service_name_trigrams
    WHERE trigrams @> name_trigrams(lower(%(query)s)) LIMIT %(most)s
"""
_COUNTED = """
    WITH matching AS MATERIALIZED (SELECT {columns} FROM services WHERE {where})
    SELECT *, (SELECT count(*) FROM matching) AS matching_total FROM matching
    ORDER BY {{order}} LIMIT %(limit)s OFFSET %(offset)s
"""
SEARCH_PAGE_COUNTED = _COUNTED.format(columns=SERVICE_COLUMNS, where=_MATCH)
SEARCH_CANDIDATES_COUNTED = _COUNTED.format(
    columns=SERVICE_COLUMNS, where=f"service_id = ANY(%(candidates)s::bigint[]) AND {_QUERY_MATCH} {_FILTERS}")

RECENT_TRANSITIONS = """
    SELECT t.transition_id, t.service_id, t.from_state, t.to_state, t.reason, t.alert_id, t.at,
           s.heartbeat_name, s.service_name
    FROM service_transitions t JOIN services s ON s.service_id = t.service_id
    ORDER BY t.transition_id DESC LIMIT %s
"""

SERVICE_ID_BY_NAME = "SELECT service_id FROM services WHERE lower(heartbeat_name) = lower(%s)"
SERVICE_EXISTS = "SELECT service_id FROM services WHERE service_id = %s"
TIMELINE = """
    SELECT floor(extract(epoch FROM (time - %(start)s)) / %(bucket)s)::int AS bucket,
           count(*) AS heartbeats,
           count(*) FILTER (WHERE status = ANY(%(failure_statuses)s)) AS failures
    FROM heartbeat_events
    WHERE service_id = %(service_id)s AND time >= %(start)s AND time < %(end)s
    GROUP BY 1
"""

_ALERTS_MATCH = """
    FROM alerts a JOIN services s ON s.service_id = a.service_id
    WHERE (%(active)s::boolean IS NULL OR a.active = %(active)s::boolean)
      AND (%(service_id)s = 0 OR a.service_id = %(service_id)s)
      AND (%(team)s = '' OR s.team = %(team)s)
      AND (%(reason)s = '' OR a.reason = %(reason)s)
"""
SEARCH_ALERTS = f"""
    SELECT a.alert_id, a.service_id, s.heartbeat_name, s.service_name, a.reason, a.active,
           a.opened_at, a.closed_at, a.notification_count, a.acknowledged_at, a.acknowledged_by,
           a.suppressed_by, s.team
    {_ALERTS_MATCH}
    ORDER BY a.alert_id DESC
    LIMIT %(limit)s
"""
COUNT_ALERTS = f"SELECT count(*) AS total {_ALERTS_MATCH}"


@dataclass(frozen=True)
class ServiceQuery:
    query: str = ""
    condition: int = heartbeat_pb2.SERVICE_CONDITION_UNSPECIFIED
    team: str = ""
    priority: str = ""
    active: bool | None = None
    sort: int = heartbeat_pb2.SERVICE_SORT_UNSPECIFIED
    descending: bool = False
    limit: int = DEFAULT_PAGE_SIZE
    offset: int = 0

    @classmethod
    def from_request(cls, request: heartbeat_pb2.SearchServicesRequest) -> "ServiceQuery":
        if len(request.query) > MAX_QUERY_LENGTH:
            raise InvalidArgument(f"query must be at most {MAX_QUERY_LENGTH} characters")
        if "\x00" in request.query or "\x00" in request.team:
            raise InvalidArgument("query and team must not contain NUL characters")
        if request.condition and request.condition not in CONDITIONS:
            raise InvalidArgument("condition must be a ServiceCondition")
        if request.sort not in ORDERS:
            raise InvalidArgument("sort must be a ServiceSort")
        if request.priority and request.priority not in PRIORITIES:
            raise InvalidArgument(f"priority must be one of {', '.join(PRIORITIES.values())}")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 0-{MAX_PAGE_SIZE}")
        if request.offset < 0:
            raise InvalidArgument("offset must be >= 0")
        return cls(query=request.query.strip(), condition=request.condition, team=request.team.strip(),
                   priority=PRIORITIES.get(request.priority, ""),
                   active=request.active if request.HasField("active") else None,
                   sort=request.sort, descending=request.descending,
                   limit=request.page_size or DEFAULT_PAGE_SIZE, offset=request.offset)

    def params(self) -> dict:
        return {"query": self.query, "team": self.team, "priority": self.priority, "active": self.active,
                "limit": self.limit, "offset": self.offset}

    @property
    def by_condition_only(self) -> bool:
        """True when the matching services are those of one condition (or all): a kept count."""
        return not (self.query or self.team or self.priority or self.active is not None)

    def condition_sql(self) -> str:
        return CONDITIONS.get(self.condition, "true")

    def order_sql(self) -> str:
        ascending, descending = ORDERS[self.sort]
        return descending if self.descending else ascending


@dataclass(frozen=True)
class SearchResult:
    services: list[Row]
    matching: int
    counts: Row | None


@dataclass(frozen=True)
class Timeline:
    start: dt.datetime
    end: dt.datetime
    bucket_seconds: float
    buckets: list[tuple[dt.datetime, int, int]]


class ServiceSearch:
    def __init__(self, db: Database):
        self.db = db

    def services(self, query: ServiceQuery, *, counts: bool = False, counts_only: bool = False) -> SearchResult:
        with self.db.transaction() as tx:
            match = query.condition_sql()
            if query.query and not (counts or counts_only):
                rows = self._matching_page(tx, query, match)
                if rows or query.offset == 0:
                    return SearchResult(rows, rows[0]["matching_total"] if rows else 0, None)
            kept = service_counts.read(tx) if counts or counts_only or query.by_condition_only else None
            if query.by_condition_only:
                matching = kept[KEPT_COUNT[query.condition]]
            else:
                matching = tx.one(COUNT_MATCHING.format(condition=match), query.params())["matching"]
            if counts_only:
                return SearchResult([], matching, kept)
            rows = tx.all(SEARCH_PAGE.format(condition=match, order=query.order_sql()), query.params())
        return SearchResult(rows, matching, kept if counts else None)

    @staticmethod
    def _matching_page(tx, query: ServiceQuery, match: str) -> list[Row]:
        """A page of the services matching a text query, each row with the total."""
        params = query.params()
        counted = SEARCH_PAGE_COUNTED
        if len(query.query) >= TRIGRAM:
            candidates = [r["service_id"] for r in tx.all(CANDIDATES, {"query": query.query,
                                                                       "most": MAX_CANDIDATES + 1})]
            if len(candidates) <= MAX_CANDIDATES:
                counted, params["candidates"] = SEARCH_CANDIDATES_COUNTED, candidates
        return tx.all(counted.format(condition=match, order=query.order_sql()), params)

    def recent_transitions(self, limit: int) -> list[Row]:
        return self.db.all(RECENT_TRANSITIONS, (limit,))

    def timeline(self, *, heartbeat_name: str | None, service_id: int | None, window_seconds: int,
                 buckets: int) -> Timeline:
        with self.db.transaction() as tx:
            if heartbeat_name is not None:
                row = tx.one(SERVICE_ID_BY_NAME, (heartbeat_name,))
                what = f"heartbeat {heartbeat_name!r}"
            else:
                row = tx.one(SERVICE_EXISTS, (service_id,))
                what = f"service id {service_id}"
            if row is None:
                raise NotFound(f"{what} is not registered")
            end = tx.one("SELECT now() AS now")["now"]
            start = end - dt.timedelta(seconds=window_seconds)
            bucket = window_seconds / buckets
            counted = {r["bucket"]: r for r in tx.all(TIMELINE, {
                "start": start, "end": end, "bucket": bucket, "service_id": row["service_id"],
                "failure_statuses": FAILURE_STATUSES_PARAM})}
        out = []
        for index in range(buckets):
            found = counted.get(index)
            out.append((start + dt.timedelta(seconds=bucket * index),
                        found["heartbeats"] if found else 0, found["failures"] if found else 0))
        return Timeline(start, end, bucket, out)

    def alerts(self, *, active: bool | None, service_id: int, team: str, reason: str, limit: int,
               total: bool = False) -> tuple[list[Row], int | None]:
        params = {"active": active, "service_id": service_id, "team": team, "reason": reason, "limit": limit}
        with self.db.transaction() as tx:
            rows = tx.all(SEARCH_ALERTS, params)
            counted = tx.one(COUNT_ALERTS, params)["total"] if total else None
        return rows, counted
