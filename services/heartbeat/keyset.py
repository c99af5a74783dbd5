"""Keyset paging of a sorted service list: a page starts after (or ends before)
the row that ended the previous one, so page 2,000 is read from the index where
page 1 is, instead of stepping over 99,950 rows as an OFFSET does.

An order is a list of ``SortKey``s ending with a unique one, so a row's key
values mark its place. A cursor is those values, the order they belong to and
the way it moves, in an opaque URL-safe string; the values are only ever bound
parameters. NULLs (never-seen, inactive) come after every value whichever way
the order runs, as in ``ORDER BY ... NULLS LAST``; read backwards, they come
first.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, replace

from medic.errors import InvalidArgument

MAX_CURSOR_LENGTH = 2048
BAD_CURSOR = "cursor must be one that a search with this sort gave"


@dataclass(frozen=True)
class SortKey:
    sql: str
    descending: bool = False
    nullable: bool = False
    nulls_first: bool = False
    kind: str = "int"  # how a value travels in a cursor: int, text or time

    def reversed(self) -> "SortKey":
        return replace(self, descending=not self.descending, nulls_first=not self.nulls_first)

    def order_sql(self, has_nulls: bool = True) -> str:
        nulls = (" NULLS FIRST" if self.nulls_first else " NULLS LAST") if self.nullable and has_nulls else ""
        return f"{self.sql} {'DESC' if self.descending else 'ASC'}{nulls}"


def order_sql(keys: list[SortKey]) -> str:
    return ", ".join(key.order_sql() for key in keys)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after ``values`` in ``order`` (before, when ``backward``)."""
    order: str
    values: tuple
    backward: bool = False

    def encode(self, keys: list[SortKey]) -> str:
        values = [_dump(key.kind, value) for key, value in zip(keys, self.values)]
        raw = json.dumps([self.order, self.backward, values], separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, order: str, keys: list[SortKey]) -> "Cursor":
        if len(text) > MAX_CURSOR_LENGTH:
            raise InvalidArgument(BAD_CURSOR)
        try:
            found, backward, values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if found != order or not isinstance(backward, bool) or len(values) != len(keys):
                raise ValueError(found)
            return cls(order, tuple(_load(key, value) for key, value in zip(keys, values)), backward)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidArgument(BAD_CURSOR) from exc


def _dump(kind: str, value):
    if value is None:
        return None
    return value.isoformat() if kind == "time" else value


def _load(key: SortKey, value):
    if value is None:
        if not key.nullable:
            raise ValueError("null value of a key that has none")
        return None
    if key.kind == "time":
        when = dt.datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError("time without a zone")
        return when
    if key.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("not a whole number")
        return value
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


@dataclass(frozen=True)
class Segment:
    """Part of a keyset read: SQL conditions, their parameters and the order."""
    where: str
    params: dict
    order: str


def segments(keys: list[SortKey], values: tuple | None) -> list[Segment]:
    """The reads that, one after the other, give the rows after ``values`` in the
    order of ``keys`` (every row when ``values`` is None).

    The rows after a position are those beyond it on the first key where the
    keys before are equal (a lexicographic OR). An index cannot start a range
    from an OR, so each read also carries a plain bound on the first key; and
    when that key may be NULL, its NULL rows come from a read of their own
    (``IS NULL``), before or after the others as the order puts them.
    """
    lead = keys[0]
    after = _after(keys, values) if values is not None else Segment("true", {}, "")
    if not lead.nullable:
        return [Segment(f"{after.where} AND {_bound(lead, values)}", after.params, order_sql(keys))]
    # Without NULLs to place, the first key's order is a plain ASC or DESC, which
    # an index read either way gives (NULLS LAST on a DESC would need a sort).
    valued = Segment(f"{lead.sql} IS NOT NULL AND {after.where} AND {_bound(lead, values)}", after.params,
                     ", ".join([lead.order_sql(has_nulls=False), *(key.order_sql() for key in keys[1:])]))
    nulls = Segment(f"{lead.sql} IS NULL AND {after.where}", after.params, order_sql(keys[1:] or keys))
    in_nulls = values is not None and values[0] is None
    if lead.nulls_first:
        return [nulls, valued] if values is None or in_nulls else [valued]
    return [nulls] if in_nulls else [valued, nulls]


def _bound(lead: SortKey, values: tuple | None) -> str:
    if values is None or values[0] is None:
        return "true"
    return f"{lead.sql} {'<=' if lead.descending else '>='} %(k0)s"


def _after(keys: list[SortKey], values: tuple) -> Segment:
    terms, equal, params = [], [], {}
    for i, (key, value) in enumerate(zip(keys, values)):
        if key.nullable:
            params[f"n{i}"] = value is None
            terms.append(equal + [f"({key.sql} IS NULL) {'<' if key.nulls_first else '>'} %(n{i})s"])
            equal = equal + [f"({key.sql} IS NULL) = %(n{i})s"]
            if value is None:
                continue
        params[f"k{i}"] = value
        terms.append(equal + [f"{key.sql} {'<' if key.descending else '>'} %(k{i})s"])
        equal = equal + [f"{key.sql} = %(k{i})s"]
    return Segment("(" + " OR ".join("(" + " AND ".join(t) + ")" for t in terms) + ")", params, "")
