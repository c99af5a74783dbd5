"""The maintenance-window maths: scopes, one-off and recurring windows in their
time zones, daylight-saving changes, midnight and overlaps."""
import datetime as dt

import pytest

from medic.errors import InvalidArgument
from services.heartbeat.windows import Scope, ServiceKey, Window, WindowBook, check_window, open_stretch

UTC = dt.timezone.utc


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def daily(cron: str, minutes: int, tz: str, window_id: int = 1, **scope) -> Window:
    return Window(window_id=window_id, scope=scope.pop("scope", Scope.ALL), reason="maintenance", cron=cron,
                  duration_seconds=minutes * 60, timezone=tz, **scope)


def start_end(window: Window, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """When the stretch of ``window`` open at ``at`` starts and ends; None when it is closed."""
    stretch = window.open_at(at)
    return None if stretch is None else (stretch.start, stretch.end)


def one_off(start: dt.datetime, end: dt.datetime, window_id: int = 1, **scope) -> Window:
    return Window(window_id=window_id, scope=scope.pop("scope", Scope.ALL), reason="maintenance",
                  starts_at=start, ends_at=end, **scope)


# --- daylight saving: Europe/Berlin (last Sunday of March / October) -------------

def test_berlin_nightly_window_keeps_its_local_start_across_spring_forward():
    window = daily("0 1 * * *", 120, "Europe/Berlin")
    # Saturday 28 March, CET (UTC+1): 01:00 local is 00:00 UTC.
    assert window.open_at(utc(2026, 3, 28, 0, 30)).start == utc(2026, 3, 28, 0, 0)
    # Sunday 29 March: clocks jump 02:00 -> 03:00; the window started at 01:00 CET
    # and lasts two hours of elapsed time, so it ends at 02:00 UTC (04:00 CEST).
    assert window.open_at(utc(2026, 3, 29, 1, 59)).end == utc(2026, 3, 29, 2, 0)
    assert window.open_at(utc(2026, 3, 29, 2, 0)) is None
    # Monday 30 March, CEST (UTC+2): 01:00 local is 23:00 UTC the day before.
    assert start_end(window, utc(2026, 3, 29, 23, 30)) == (utc(2026, 3, 29, 23, 0), utc(2026, 3, 30, 1, 0))
    assert window.open_at(utc(2026, 3, 30, 0, 59)) is not None
    assert window.open_at(utc(2026, 3, 30, 1, 0)) is None


def test_berlin_start_in_the_skipped_hour_opens_at_the_first_minute_after_it():
    window = daily("30 2 * * *", 30, "Europe/Berlin")
    # 02:30 does not exist on 29 March; cron runs it at 03:00 CEST (01:00 UTC).
    assert start_end(window, utc(2026, 3, 29, 1, 10)) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30))
    assert window.open_at(utc(2026, 3, 29, 0, 40)) is None


def test_berlin_start_in_the_repeated_hour_opens_once_on_fall_back():
    window = daily("30 2 * * *", 30, "Europe/Berlin")
    # 25 October: 02:00-03:00 happens twice; the window opens at the first 02:30 (CEST, 00:30 UTC) only.
    assert window.open_at(utc(2026, 10, 25, 0, 45)) is not None
    assert window.open_at(utc(2026, 10, 25, 1, 45)) is None
    # The next day at 02:30 CET is 01:30 UTC.
    assert window.open_at(utc(2026, 10, 26, 1, 45)).start == utc(2026, 10, 26, 1, 30)


# --- daylight saving: America/New_York (second Sunday of March, first of November)

def test_new_york_office_hours_window_follows_the_local_clock_across_dst():
    window = daily("0 9 * * 1-5", 8 * 60, "America/New_York")
    # Friday 6 March, EST (UTC-5): 09:00 is 14:00 UTC.
    assert window.open_at(utc(2026, 3, 6, 13, 30)) is None
    assert window.open_at(utc(2026, 3, 6, 14, 0)).end == utc(2026, 3, 6, 22, 0)
    # Monday 9 March, EDT (UTC-4): 09:00 is 13:00 UTC.
    assert window.open_at(utc(2026, 3, 9, 13, 30)).start == utc(2026, 3, 9, 13, 0)
    assert window.open_at(utc(2026, 3, 9, 21, 0)) is None
    # Not at the weekend.
    assert window.open_at(utc(2026, 3, 7, 15, 0)) is None


def test_new_york_repeated_hour_on_fall_back_opens_once():
    window = daily("30 1 * * *", 10, "America/New_York")
    # 1 November: 01:00-02:00 happens twice; 01:30 EDT is 05:30 UTC, 01:30 EST would be 06:30.
    assert window.open_at(utc(2026, 11, 1, 5, 35)) is not None
    assert window.open_at(utc(2026, 11, 1, 6, 35)) is None


# --- midnight -----------------------------------------------------------------

def test_recurring_window_crossing_midnight_stays_open_into_the_next_day():
    window = daily("0 23 * * *", 180, "Europe/Berlin")
    # 23:00 CET on 10 January is 22:00 UTC; open until 02:00 local (01:00 UTC) on the 11th.
    assert start_end(window, utc(2026, 1, 11, 0, 30)) == (utc(2026, 1, 10, 22, 0), utc(2026, 1, 11, 1, 0))
    assert window.open_at(utc(2026, 1, 11, 1, 0)) is None


def test_friday_night_window_is_open_on_saturday_morning():
    window = daily("0 22 * * 5", 240, "UTC")
    assert window.open_at(utc(2026, 1, 10, 1, 0)) is not None      # Saturday 01:00
    assert window.open_at(utc(2026, 1, 10, 2, 0)) is None          # ended at 02:00
    assert window.open_at(utc(2026, 1, 11, 1, 0)) is None          # Sunday: no Saturday start


def test_one_off_window_crossing_midnight():
    window = one_off(utc(2026, 1, 1, 23, 0), utc(2026, 1, 2, 1, 0))
    assert window.open_at(utc(2026, 1, 2, 0, 59)) is not None
    assert window.open_at(utc(2026, 1, 2, 1, 0)) is None
    assert window.open_at(utc(2026, 1, 1, 22, 59)) is None


# --- overlaps -------------------------------------------------------------------

def test_overlapping_windows_keep_the_service_quiet_until_the_last_one_ends():
    first = one_off(utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), window_id=1)
    second = one_off(utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 12), window_id=2)
    stretch = open_stretch([first, second], utc(2026, 1, 1, 10, 45))
    assert (stretch.window_id, stretch.end) == (2, utc(2026, 1, 1, 12))
    assert open_stretch([first, second], utc(2026, 1, 1, 11, 30)).window_id == 2
    assert open_stretch([first, second], utc(2026, 1, 1, 12)) is None


def test_overlapping_occurrences_of_one_recurring_window_make_one_stretch():
    # Hourly starts 09:00-17:00, each 90 minutes: open 09:00 to 18:30 without a gap.
    window = daily("0 9-17 * * *", 90, "UTC")
    assert start_end(window, utc(2026, 1, 5, 12, 10)) == (utc(2026, 1, 5, 12), utc(2026, 1, 5, 18, 30))
    assert window.open_at(utc(2026, 1, 5, 18, 29)) is not None and window.open_at(utc(2026, 1, 5, 18, 30)) is None


def test_a_schedule_whose_occurrences_always_overlap_is_cut_and_taken_up_again():
    window = daily("*/10 * * * *", 15, "UTC")
    stretch = window.open_at(utc(2026, 1, 5, 12, 3))
    assert stretch.end > utc(2026, 1, 5, 19)  # followed for many occurrences
    assert window.open_at(stretch.end - dt.timedelta(seconds=1)) is not None


def test_a_recurring_and_a_one_off_window_overlapping():
    book = WindowBook()
    book.load(1, [daily("0 2 * * *", 60, "UTC", window_id=1),
                  one_off(utc(2026, 1, 5, 2, 30), utc(2026, 1, 5, 4), window_id=2)])
    service = ServiceKey(1, "payments", "billing")
    assert book.open_for(service, utc(2026, 1, 5, 2, 10)).window_id == 1
    assert book.open_for(service, utc(2026, 1, 5, 2, 45)).end == utc(2026, 1, 5, 4)
    assert book.open_for(service, utc(2026, 1, 5, 3, 30)).window_id == 2
    assert book.open_for(service, utc(2026, 1, 5, 4)) is None


# --- scopes ---------------------------------------------------------------------

def test_team_scope_matches_the_team_name_case_insensitively():
    window = one_off(utc(2026, 1, 1), utc(2026, 1, 2), scope=Scope.TEAM, team="Payments")
    assert window.covers(ServiceKey(1, "payments", "billing"))
    assert not window.covers(ServiceKey(2, "search", "billing"))


def test_glob_scope_matches_heartbeat_names_case_insensitively():
    window = one_off(utc(2026, 1, 1), utc(2026, 1, 2), scope=Scope.GLOB, name_glob="db-*")
    assert window.covers(ServiceKey(1, "t", "DB-primary"))
    assert window.covers(ServiceKey(2, "t", "db-"))
    assert not window.covers(ServiceKey(3, "t", "api-db"))
    assert not window.covers(ServiceKey(4, "t", "db"))
    single = one_off(utc(2026, 1, 1), utc(2026, 1, 2), scope=Scope.GLOB, name_glob="node-?")
    assert single.covers(ServiceKey(5, "t", "node-7")) and not single.covers(ServiceKey(6, "t", "node-17"))


def test_book_finds_each_scope_and_only_while_open():
    book = WindowBook()
    book.load(1, [
        one_off(utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), window_id=1, scope=Scope.SERVICE, service_id=7),
        one_off(utc(2026, 1, 1, 12), utc(2026, 1, 1, 13), window_id=2, scope=Scope.TEAM, team="search"),
        one_off(utc(2026, 1, 1, 14), utc(2026, 1, 1, 15), window_id=3, scope=Scope.GLOB, name_glob="batch-*"),
        one_off(utc(2026, 1, 1, 16), utc(2026, 1, 1, 17), window_id=4, scope=Scope.ALL),
    ])
    api = ServiceKey(7, "web", "api")
    indexer = ServiceKey(8, "Search", "indexer")
    batch = ServiceKey(9, "web", "batch-nightly")
    assert [book.open_for(s, utc(2026, 1, 1, 10, 30)) is not None for s in (api, indexer, batch)] == [
        True, False, False]
    assert [book.open_for(s, utc(2026, 1, 1, 12, 30)) is not None for s in (api, indexer, batch)] == [
        False, True, False]
    assert [book.open_for(s, utc(2026, 1, 1, 14, 30)) is not None for s in (api, indexer, batch)] == [
        False, False, True]
    assert [book.open_for(s, utc(2026, 1, 1, 16, 30)) is not None for s in (api, indexer, batch)] == [
        True, True, True]
    assert all(book.open_for(s, utc(2026, 1, 1, 11, 30)) is None for s in (api, indexer, batch))


def test_book_remembers_a_recurring_window_only_until_it_changes():
    book = WindowBook()
    book.load(1, [daily("0 * * * *", 10, "UTC")])
    service = ServiceKey(1, "t", "x")
    assert book.open_for(service, utc(2026, 1, 1, 10, 5)).end == utc(2026, 1, 1, 10, 10)
    assert book.open_for(service, utc(2026, 1, 1, 10, 10)) is None
    assert book.open_for(service, utc(2026, 1, 1, 10, 59)) is None
    assert book.open_for(service, utc(2026, 1, 1, 11, 0)).start == utc(2026, 1, 1, 11)


# --- validation -------------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ({"scope": "planet"}, "scope"),
    ({"scope": "service"}, "service_id"),
    ({"scope": "team", "team": " "}, "team"),
    ({"scope": "glob"}, "name_glob"),
    ({"scope": "all", "cron": "0 1 * * *", "duration_seconds": 600, "timezone": "Mars/Olympus"}, "timezone"),
    ({"scope": "all", "cron": "0 25 * * *", "duration_seconds": 600, "timezone": "UTC"}, "cron"),
    ({"scope": "all", "cron": "0 1 * *", "duration_seconds": 600, "timezone": "UTC"}, "cron"),
    ({"scope": "all", "cron": "0 1 * * *", "duration_seconds": 5, "timezone": "UTC"}, "duration_seconds"),
    ({"scope": "all"}, "starts_at"),
    ({"scope": "all", "starts_at": utc(2026, 1, 2), "ends_at": utc(2026, 1, 1)}, "ends_at"),
    ({"scope": "all", "starts_at": utc(2026, 1, 1), "ends_at": utc(2026, 1, 2), "cron": "0 1 * * *"}, "not both"),
])
def test_bad_windows_are_refused_naming_the_field(fields, message):
    with pytest.raises(InvalidArgument, match=message):
        check_window({"reason": "upgrade", **fields})


def test_a_window_needs_a_reason():
    with pytest.raises(InvalidArgument, match="reason"):
        check_window({"scope": "all", "starts_at": utc(2026, 1, 1), "ends_at": utc(2026, 1, 2), "reason": ""})


def test_book_state_says_until_when_a_window_is_open_or_when_it_next_opens():
    nightly = daily("0 2 * * *", 60, "UTC", window_id=1)
    past = one_off(utc(2026, 1, 1, 1), utc(2026, 1, 1, 2), window_id=2)
    book = WindowBook()
    book.load(1, [nightly, past])
    stretch, following = book.state(nightly, utc(2026, 1, 5, 2, 30))
    assert (stretch.end, following) == (utc(2026, 1, 5, 3), None)
    assert book.state(nightly, utc(2026, 1, 5, 12)) == (None, utc(2026, 1, 6, 2))
    assert book.state(past, utc(2026, 1, 5, 12)) == (None, None)
