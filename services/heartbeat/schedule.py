"""Cron schedules: when a scheduled service is expected.

A schedule is a 5-field cron expression (minute hour day-of-month month
day-of-week) read in an IANA time zone. The expression is parsed and evaluated
by ``cronsim`` (the library Healthchecks.io uses); nothing here reads cron
itself. Daylight-saving changes behave as cronsim defines them: a time that a
spring-forward gap skips fires at the first minute after the gap (02:30 in
America/New_York on that day fires at 03:00 EDT), and a time that a fall-back
repeats fires once, at its first occurrence.
"""
from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import NamedTuple

from cronsim import CronSim, CronSimError

from medic.errors import InvalidArgument

MAX_SCHEDULE_LENGTH = 255
MAX_TIMEZONE_LENGTH = 64
DEFAULT_TIMEZONE = "UTC"
FIELDS = 5
MAX_PERIOD_SECONDS = 365 * 24 * 3600
# cronsim evaluates any instant; a schedule that fires less than once in this
# many years is refused as a mistake (e.g. "0 0 30 2 *", February 30th, never fires).
_PROBE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


class Schedule(NamedTuple):
    expression: str
    timezone: str

    def fires_after(self, after: dt.datetime, count: int = 1) -> dt.datetime:
        """The ``count``-th time the schedule fires strictly after ``after`` (in UTC)."""
        zone = _zone(self.timezone)
        times = CronSim(self.expression, after.astimezone(zone))
        at = after
        for _ in range(max(count, 1)):
            at = next(times)
        return at.astimezone(dt.timezone.utc)

    def period_seconds(self, after: dt.datetime, gaps: int = 10) -> int:
        """The shortest gap between the schedule's next ``gaps`` + 1 times after
        ``after``, in seconds, 1 to a year: the alert interval (the pace of the
        reminders) of a scheduled service registered without one ("30 9 * * 1-5":
        a day, whatever the weekday)."""
        times = [self.fires_after(after)]
        for _ in range(gaps):
            times.append(self.fires_after(times[-1]))
        shortest = min(later - earlier for earlier, later in zip(times, times[1:]))
        return max(1, min(MAX_PERIOD_SECONDS, int(shortest.total_seconds())))

    def describe(self) -> str:
        """The schedule in words, e.g. "At 09:30 on Monday through Friday, Europe/Berlin"."""
        return f"{_explain(self.expression)}, {self.timezone}"


@functools.lru_cache(maxsize=4096)
def _explain(expression: str) -> str:
    """cronsim's words for an expression (listing many services describes each)."""
    return CronSim(expression, _PROBE).explain()


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def check_timezone(name: str) -> str:
    """An IANA zone name, or INVALID_ARGUMENT saying what is wrong; "" is UTC."""
    name = (name or "").strip() or DEFAULT_TIMEZONE
    if len(name) > MAX_TIMEZONE_LENGTH or "\x00" in name:
        raise InvalidArgument(f"timezone must be an IANA time zone name of at most {MAX_TIMEZONE_LENGTH} "
                              "characters, e.g. Europe/Berlin")
    try:
        _zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(f"timezone {name!r} is not a known IANA time zone (e.g. Europe/Berlin, "
                              "America/New_York, UTC)") from None
    return name


def check_schedule(expression: str | None) -> str | None:
    """A 5-field cron expression that fires, or INVALID_ARGUMENT saying what is
    wrong; empty means no schedule (None)."""
    expression = " ".join((expression or "").split())
    if not expression:
        return None
    if len(expression) > MAX_SCHEDULE_LENGTH or "\x00" in expression:
        raise InvalidArgument(f"schedule must be a cron expression of at most {MAX_SCHEDULE_LENGTH} characters")
    fields = expression.split(" ")
    if len(fields) != FIELDS:
        raise InvalidArgument(f"schedule {expression!r} has {len(fields)} fields; a cron expression has 5: "
                              "minute hour day-of-month month day-of-week (e.g. '30 9 * * 1-5')")
    try:
        times = CronSim(expression, _PROBE)
        next(times)
    except CronSimError as exc:
        raise InvalidArgument(f"schedule {expression!r} is not a valid cron expression: {exc}") from None
    except StopIteration:
        raise InvalidArgument(f"schedule {expression!r} never fires") from None
    return expression


def of(expression: str | None, timezone: str | None) -> Schedule | None:
    """The schedule of a service row (None: the interval applies)."""
    return Schedule(expression, timezone or DEFAULT_TIMEZONE) if expression else None
