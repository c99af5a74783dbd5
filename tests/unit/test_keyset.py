"""Keyset cursors and the reads they turn into (services/heartbeat/keyset.py)."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from medic.errors import InvalidArgument
from services.heartbeat.keyset import Cursor, SortKey, segments

DEADLINE = [SortKey("deadline_at", nullable=True, kind="time"), SortKey("service_id")]
NAME = [SortKey("lower(heartbeat_name)", kind="text")]
WHEN = dt.datetime(2026, 12, 7, 5, 30, 0, 123456, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("keys, values, backward", [
    (DEADLINE, (WHEN, 42), False),
    (DEADLINE, (None, 7), True),
    (NAME, ("zürich-backup ✓",), False),
])
def test_a_cursor_comes_back_as_it_was_made(keys, values, backward):
    text = Cursor("4a", values, backward).encode(keys)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert Cursor.decode(text, "4a", keys) == Cursor("4a", values, backward)


def forged(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.mark.parametrize("text", [
    "",  # nothing
    "%%%",  # not base64
    forged("4d", False, [WHEN.isoformat(), 1]),  # another order
    forged("4a", False, [WHEN.isoformat()]),  # too few values
    forged("4a", False, ["yesterday", 1]),  # not a time
    forged("4a", False, ["2026-12-07T05:30:00", 1]),  # a time without its zone
    forged("4a", False, [WHEN.isoformat(), "1"]),  # not a whole number
    forged("4a", False, [WHEN.isoformat(), None]),  # NULL where the key has none
    forged("4a", "yes", [WHEN.isoformat(), 1]),
    "A" * 2049,
])
def test_a_cursor_no_search_of_this_order_made_is_refused(text):
    with pytest.raises(InvalidArgument, match="cursor"):
        Cursor.decode(text, "4a", DEADLINE)


def test_the_first_page_of_a_nullable_order_reads_values_then_nulls_and_backwards_the_other_way():
    forward = segments(DEADLINE, None)
    assert [s.where.split(" AND ")[0] for s in forward] == ["deadline_at IS NOT NULL", "deadline_at IS NULL"]
    assert forward[0].order == "deadline_at ASC, service_id ASC"  # an index order, no NULLS LAST to sort
    backward = segments([key.reversed() for key in DEADLINE], None)
    assert [s.where.split(" AND ")[0] for s in backward] == ["deadline_at IS NULL", "deadline_at IS NOT NULL"]


def test_a_cursor_among_the_nulls_reads_only_nulls_forwards_and_bounds_the_values_backwards():
    assert [s.where.split(" AND ")[0] for s in segments(DEADLINE, (None, 9))] == ["deadline_at IS NULL"]
    after = segments(DEADLINE, (WHEN, 9))
    assert len(after) == 2 and "deadline_at >= %(k0)s" in after[0].where and after[0].params["k0"] == WHEN
    before = segments([key.reversed() for key in DEADLINE], (WHEN, 9))
    assert len(before) == 1 and "deadline_at <= %(k0)s" in before[0].where
