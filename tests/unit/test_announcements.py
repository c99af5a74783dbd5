"""What announcing a maintenance window decides without the database: when an
announced occurrence ends, the event ids, and how a glob scope is narrowed."""
from __future__ import annotations

import datetime as dt

from services.heartbeat.announcements import like_prefix, end_of, event_prefix
from services.heartbeat.windows import Scope, Window

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 6, 12, 0, tzinfo=UTC)


def test_an_announced_occurrence_ends_as_the_window_is_defined_now():
    one_off = Window(1, Scope.ALL, "upgrade", starts_at=NOW, ends_at=NOW + dt.timedelta(hours=2))
    assert end_of(one_off, NOW, NOW) == NOW + dt.timedelta(hours=2)
    nightly = Window(2, Scope.ALL, "backup", cron="0 2 * * *", duration_seconds=3600, timezone="Europe/Berlin")
    start = dt.datetime(2026, 3, 6, 1, 0, tzinfo=UTC)  # 02:00 in Berlin
    assert end_of(nightly, start, NOW) == start + dt.timedelta(hours=1)


def test_an_occurrence_the_window_no_longer_covers_or_a_deleted_window_ends_now():
    moved = Window(1, Scope.ALL, "upgrade", starts_at=NOW + dt.timedelta(days=1), ends_at=NOW + dt.timedelta(days=2))
    assert end_of(moved, NOW - dt.timedelta(hours=1), NOW) == NOW
    assert end_of(None, NOW - dt.timedelta(hours=1), NOW) == NOW


def test_announcements_have_stable_event_ids_per_occurrence_kind_and_service():
    assert event_prefix(7, dt.datetime(2026, 1, 1, tzinfo=UTC), "window_started") == "window-7-1767225600-started-"
    assert event_prefix(7, dt.datetime(2026, 1, 1, tzinfo=UTC), "window_ended") == "window-7-1767225600-ended-"


def test_a_glob_is_narrowed_by_its_literal_prefix_with_like_wildcards_escaped():
    assert like_prefix("DB-*") == "db-"
    assert like_prefix("batch_[0-9]*") == "batch\\_"
    assert like_prefix("*-db") == ""
    assert like_prefix("100%?") == "100\\%"
