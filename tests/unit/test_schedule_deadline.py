"""The deadline of a service on a cron schedule (deadline.py with schedule.py):
the threshold-th scheduled time after the latest counting heartbeat (or the
activation), plus the grace period, in the schedule's time zone."""
import datetime as dt
import zoneinfo

import pytest

from medic.errors import InvalidArgument
from services.heartbeat import deadline as rule
from services.heartbeat.schedule import Schedule, check_schedule, check_timezone

UTC = dt.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def deadline(schedule: Schedule, last: dt.datetime | None, *, activated: dt.datetime | None = None,
             grace: int = 0, threshold: int = 1) -> dt.datetime:
    activated = activated or dt.datetime(2000, 1, 1, tzinfo=UTC)
    recent = [last] if last is not None else []
    return rule.deadline(recent, threshold, activated, 3600, grace, schedule)


def local(zone, *args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone).astimezone(UTC)


def test_every_five_minutes_is_due_at_the_next_multiple_of_five():
    every5 = Schedule("*/5 * * * *", "UTC")
    assert deadline(every5, dt.datetime(2026, 5, 4, 10, 2, 13, tzinfo=UTC)) == dt.datetime(2026, 5, 4, 10, 5, tzinfo=UTC)
    # A heartbeat right on a scheduled time is due at the next one.
    assert deadline(every5, dt.datetime(2026, 5, 4, 10, 5, tzinfo=UTC)) == dt.datetime(2026, 5, 4, 10, 10, tzinfo=UTC)
    assert deadline(every5, dt.datetime(2026, 5, 4, 23, 58, tzinfo=UTC)) == dt.datetime(2026, 5, 5, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("last, expected", [
    # Spring forward (Sunday 29 March 2026, CET -> CEST): Friday's run is due Monday 09:00 CEST = 07:00 UTC.
    (local(BERLIN, 2026, 3, 27, 9, 0, 30), dt.datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),
    # The Friday before it was still winter time: 09:00 CET = 08:00 UTC.
    (local(BERLIN, 2026, 3, 19, 9, 1), dt.datetime(2026, 3, 20, 8, 0, tzinfo=UTC)),
    # Fall back (Sunday 25 October 2026, CEST -> CET): Friday 09:00 CEST, then Monday 09:00 CET = 08:00 UTC.
    (local(BERLIN, 2026, 10, 23, 9, 0, 5), dt.datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
    # A weekday before 09:00 is due the same day.
    (local(BERLIN, 2026, 10, 26, 8, 30), dt.datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
])
def test_weekdays_at_nine_in_berlin_across_both_daylight_saving_changes(last, expected):
    assert deadline(Schedule("0 9 * * 1-5", "Europe/Berlin"), last) == expected
    assert expected.astimezone(BERLIN).hour == 9


def test_the_last_day_of_the_month():
    monthly = Schedule("0 23 L * *", "UTC")
    assert deadline(monthly, dt.datetime(2026, 2, 3, tzinfo=UTC)) == dt.datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert deadline(monthly, dt.datetime(2028, 2, 3, tzinfo=UTC)) == dt.datetime(2028, 2, 29, 23, 0, tzinfo=UTC)
    assert deadline(monthly, dt.datetime(2026, 4, 30, 23, 0, 1, tzinfo=UTC)) == dt.datetime(2026, 5, 31, 23, 0, tzinfo=UTC)


def test_a_grace_period_is_added_to_the_scheduled_time():
    hourly = Schedule("0 * * * *", "UTC")
    last = dt.datetime(2026, 6, 1, 10, 0, 20, tzinfo=UTC)
    assert deadline(hourly, last, grace=300) == dt.datetime(2026, 6, 1, 11, 5, tzinfo=UTC)
    assert rule.is_overdue(deadline(hourly, last, grace=300), dt.datetime(2026, 6, 1, 11, 4, 59, tzinfo=UTC)) is False
    assert rule.is_overdue(deadline(hourly, last, grace=300), dt.datetime(2026, 6, 1, 11, 5, tzinfo=UTC)) is True


def test_new_york_at_half_past_two_on_the_spring_forward_day_fires_after_the_gap():
    # 8 March 2026: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day;
    # cronsim fires at the first minute after the gap, 03:00 EDT (07:00 UTC).
    nightly = Schedule("30 2 * * *", "America/New_York")
    due = deadline(nightly, local(NEW_YORK, 2026, 3, 7, 2, 31))
    assert due == dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert due.astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:00 EDT"
    # The next day it is 02:30 EDT again.
    assert deadline(nightly, due) == local(NEW_YORK, 2026, 3, 9, 2, 30)


def test_a_repeated_hour_fires_once_at_its_first_occurrence():
    # 1 November 2026: 01:00-02:00 happens twice in New York.
    at_130 = Schedule("30 1 * * *", "America/New_York")
    first = deadline(at_130, local(NEW_YORK, 2026, 10, 31, 12, 0))
    assert first == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert deadline(at_130, first) == dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)  # next day, 01:30 EST


def test_a_never_seen_service_counts_from_its_activation_and_old_beats_do_not_count():
    daily = Schedule("0 6 * * *", "UTC")
    activated = dt.datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    assert deadline(daily, None, activated=activated) == dt.datetime(2026, 1, 11, 6, 0, tzinfo=UTC)
    assert deadline(daily, dt.datetime(2026, 1, 1, tzinfo=UTC), activated=activated) == \
        dt.datetime(2026, 1, 11, 6, 0, tzinfo=UTC)


def test_threshold_two_allows_one_missed_run():
    daily = Schedule("0 6 * * *", "UTC")
    assert deadline(daily, dt.datetime(2026, 1, 10, 6, 0, 5, tzinfo=UTC), threshold=2) == \
        dt.datetime(2026, 1, 12, 6, 0, tzinfo=UTC)


def test_the_schedule_is_told_in_words_with_its_zone():
    assert Schedule("30 9 * * 1-5", "Europe/Berlin").describe() == "At 09:30 on Monday through Friday, Europe/Berlin"


@pytest.mark.parametrize("expression, words", [
    ("* * * *", "has 4 fields"), ("0 0 * * * *", "has 6 fields"), ("61 * * * *", "not a valid cron"),
    ("0 0 31 2 *", "not a valid cron"), ("@daily", "has 1 fields"), ("a b c d e", "not a valid cron"),
])
def test_invalid_expressions_are_refused_saying_what_is_wrong(expression, words):
    with pytest.raises(InvalidArgument, match=words):
        check_schedule(expression)


def test_blank_expressions_mean_no_schedule_and_spaces_are_normalised():
    assert check_schedule("") is None and check_schedule("   ") is None
    assert check_schedule(" 0  9 * * 1-5 ") == "0 9 * * 1-5"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "Europe/", "x" * 65])
def test_unknown_time_zones_are_refused(zone):
    with pytest.raises(InvalidArgument, match="timezone"):
        check_timezone(zone)


def test_a_blank_zone_is_utc():
    assert check_timezone("") == "UTC" and check_timezone("Asia/Tokyo") == "Asia/Tokyo"


def test_the_period_of_a_schedule_is_its_shortest_gap_whatever_the_day():
    friday = dt.datetime(2026, 3, 6, 12, 0, tzinfo=dt.timezone.utc)
    assert Schedule("30 9 * * 1-5", "Europe/Berlin").period_seconds(friday) == 86400
    assert Schedule("*/5 * * * *", "UTC").period_seconds(friday) == 300
    assert Schedule("0 3 1 * *", "UTC").period_seconds(friday) == 30 * 86400  # April to May: the shortest gap
