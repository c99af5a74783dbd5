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
from services.heartbeat import keyset, service_counts
from services.heartbeat.keyset import Cursor, SortKey
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

# The (ascending, descending) keys of each sort, the last one unique (the keyset
# of a page). Never-seen and inactive services (NULL) come last either way. Name
# and deadline orders are read from an index both ways (services_heartbeat_name_key,
# services_deadline_order_idx); state and last heartbeat sort the matches.
_STATE_RANK = f"CASE state WHEN '{ServiceState.DOWN}' THEN 0 WHEN '{ServiceState.NEW}' THEN 1 ELSE 2 END"
_NAME = SortKey("lower(heartbeat_name)", kind="text")
_ID = SortKey("service_id")
_BY_NAME = ([_NAME], [_NAME.reversed()])
KEYS = {
    heartbeat_pb2.SERVICE_SORT_UNSPECIFIED: _BY_NAME,
    heartbeat_pb2.SERVICE_SORT_NAME: _BY_NAME,
    heartbeat_pb2.SERVICE_SORT_STATE: ([SortKey(_STATE_RANK), _NAME], [SortKey(_STATE_RANK, descending=True), _NAME]),
    heartbeat_pb2.SERVICE_SORT_LAST_HEARTBEAT: (
        [SortKey("last_heartbeat_at", descending=True, nullable=True, kind="time"), _ID],
        [SortKey("last_heartbeat_at", nullable=True, kind="time"), _ID]),
    heartbeat_pb2.SERVICE_SORT_DEADLINE: ([SortKey("deadline_at", nullable=True, kind="time"), _ID],
                                          [SortKey("deadline_at", descending=True, nullable=True, kind="time"),
                                           _ID.reversed()]),
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
# {narrowed}: nothing, or the candidates of a text query (below); {keys}: each sort
# key as a column, sort_key_<n>, for the cursors.
COUNT_MATCHING = f"SELECT count(*) AS matching FROM services WHERE {_MATCH} {{narrowed}}"
SEARCH_PAGE = f"""
    SELECT {SERVICE_COLUMNS}{{keys}} FROM services WHERE {_MATCH} {{narrowed}}
    ORDER BY {{order}} LIMIT %(limit)s OFFSET %(offset)s
"""
# {after}: where a keyset read starts (keyset.segments).
KEYSET_PAGE = f"""
    SELECT {SERVICE_COLUMNS}{{keys}} FROM services WHERE {_MATCH} {{narrowed}} AND {{after}}
    ORDER BY {{order}} LIMIT %(limit)s
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
NARROWED = "AND service_id = ANY(%(candidates)s::bigint[])"
SEARCH_PAGE_COUNTED = _COUNTED.format(columns=SERVICE_COLUMNS + "{keys}", where=_MATCH)
SEARCH_CANDIDATES_COUNTED = _COUNTED.format(
    columns=SERVICE_COLUMNS + "{keys}", where=f"{_QUERY_MATCH} {_FILTERS} {NARROWED}")

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
    cursor: Cursor | None = None
    last_page: bool = False

    @classmethod
    def from_request(cls, request: heartbeat_pb2.SearchServicesRequest) -> "ServiceQuery":
        if len(request.query) > MAX_QUERY_LENGTH:
            raise InvalidArgument(f"query must be at most {MAX_QUERY_LENGTH} characters")
        if "\x00" in request.query or "\x00" in request.team:
            raise InvalidArgument("query and team must not contain NUL characters")
        if request.condition and request.condition not in CONDITIONS:
            raise InvalidArgument("condition must be a ServiceCondition")
        if request.sort not in KEYS:
            raise InvalidArgument("sort must be a ServiceSort")
        if request.priority and request.priority not in PRIORITIES:
            raise InvalidArgument(f"priority must be one of {', '.join(PRIORITIES.values())}")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 0-{MAX_PAGE_SIZE}")
        if request.offset < 0:
            raise InvalidArgument("offset must be >= 0")
        cursor = None
        if request.cursor and not request.last_page:
            cursor = Cursor.decode(request.cursor, _order_name(request.sort, request.descending),
                                   KEYS[request.sort][request.descending])
        return cls(query=request.query.strip(), condition=request.condition, team=request.team.strip(),
                   priority=PRIORITIES.get(request.priority, ""),
                   active=request.active if request.HasField("active") else None,
                   sort=request.sort, descending=request.descending,
                   limit=request.page_size or DEFAULT_PAGE_SIZE, offset=request.offset,
                   cursor=cursor, last_page=request.last_page)

    def params(self) -> dict:
        return {"query": self.query, "team": self.team, "priority": self.priority, "active": self.active,
                "limit": self.limit, "offset": self.offset}

    @property
    def by_condition_only(self) -> bool:
        """True when the matching services are those of one condition (or all): a kept count."""
        return not (self.query or self.team or self.priority or self.active is not None)

    def condition_sql(self) -> str:
        return CONDITIONS.get(self.condition, "true")

    @property
    def keys(self) -> list[SortKey]:
        return KEYS[self.sort][self.descending]

    def order_sql(self) -> str:
        return keyset.order_sql(self.keys)

    def keys_sql(self) -> str:
        return "".join(f", {key.sql} AS sort_key_{i}" for i, key in enumerate(self.keys))

    def cursor_at(self, row: Row, backward: bool) -> str:
        """The cursor of the page after ``row`` (before it, when ``backward``)."""
        values = tuple(row[f"sort_key_{i}"] for i in range(len(self.keys)))
        return Cursor(_order_name(self.sort, self.descending), values, backward).encode(self.keys)


def _order_name(sort: int, descending: bool) -> str:
    return f"{sort}{'d' if descending else 'a'}"


@dataclass(frozen=True)
class SearchResult:
    services: list[Row]
    matching: int
    counts: Row | None
    next_cursor: str = ""
    previous_cursor: str = ""


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
        # The first page too: its keyset read takes an index where an ORDER BY with
        # NULLS LAST one way would sort.
        keyed = query.cursor is not None or query.last_page or (query.offset == 0 and not query.query)
        with self.db.transaction() as tx:
            match = query.condition_sql()
            params = query.params()
            candidates = self._candidates(tx, query)
            narrowed = NARROWED if candidates is not None else ""
            params["candidates"] = candidates
            if query.query and not keyed and not (counts or counts_only):
                counted = SEARCH_CANDIDATES_COUNTED if candidates is not None else SEARCH_PAGE_COUNTED
                rows = tx.all(counted.format(condition=match, order=query.order_sql(), keys=query.keys_sql()),
                              params)
                if rows or query.offset == 0:
                    total = rows[0]["matching_total"] if rows else 0
                    return SearchResult(rows, total, None, *_offset_cursors(query, rows, total))
            kept = service_counts.read(tx) if counts or counts_only or query.by_condition_only else None
            if query.by_condition_only:
                matching = kept[KEPT_COUNT[query.condition]]
            else:
                matching = tx.one(COUNT_MATCHING.format(condition=match, narrowed=narrowed), params)["matching"]
            if counts_only:
                return SearchResult([], matching, kept)
            if keyed:
                rows, next_cursor, previous_cursor = _keyset_page(tx, query, match, narrowed, params, matching)
            else:
                rows = tx.all(SEARCH_PAGE.format(condition=match, narrowed=narrowed, order=query.order_sql(),
                                                 keys=query.keys_sql()), params)
                next_cursor, previous_cursor = _offset_cursors(query, rows, matching)
        return SearchResult(rows, matching, kept if counts else None, next_cursor, previous_cursor)

    @staticmethod
    def _candidates(tx, query: ServiceQuery) -> list[int] | None:
        """The services that hold every trigram of a text query, when they are few."""
        if len(query.query) < TRIGRAM:
            return None
        found = [r["service_id"] for r in tx.all(CANDIDATES, {"query": query.query, "most": MAX_CANDIDATES + 1})]
        return found if len(found) <= MAX_CANDIDATES else None

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


def _offset_cursors(query: ServiceQuery, rows: list[Row], matching: int) -> tuple[str, str]:
    """(next, previous) cursors of a page read by offset."""
    if not rows:
        return "", ""
    more = query.offset + len(rows) < matching
    return (query.cursor_at(rows[-1], backward=False) if more else "",
            query.cursor_at(rows[0], backward=True) if query.offset > 0 else "")


def _keyset_page(tx, query: ServiceQuery, match: str, narrowed: str, params: dict,
                 matching: int) -> tuple[list[Row], str, str]:
    """The first page, the page a cursor points at, or the last page; with its
    (next, previous) cursors.

    One row more than the page is read, to know whether another page follows
    in the direction of reading. The last page holds what is left after the
    whole pages before it, read backwards from the end.
    """
    backward = query.last_page or (query.cursor is not None and query.cursor.backward)
    size = (matching % query.limit or query.limit) if query.last_page else query.limit
    keys = [key.reversed() for key in query.keys] if backward else query.keys
    rows: list[Row] = []
    for segment in keyset.segments(keys, query.cursor.values if query.cursor and not query.last_page else None):
        rows += tx.all(KEYSET_PAGE.format(condition=match, narrowed=narrowed, after=segment.where,
                                          order=segment.order, keys=query.keys_sql()),
                       {**params, **segment.params, "limit": size + 1 - len(rows)})
        if len(rows) > size:
            break
    more, rows = len(rows) > size, rows[:size]
    if not rows:
        return [], "", ""
    if not backward:
        return (rows, query.cursor_at(rows[-1], backward=False) if more else "",
                query.cursor_at(rows[0], backward=True) if query.cursor else "")
    rows.reverse()
    return (rows, "" if query.last_page else query.cursor_at(rows[-1], backward=False),
            query.cursor_at(rows[0], backward=True) if more else "")
