"""Working hours of a notification target (``notification_targets.active_hours``).

``{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00",
"timezone": "Europe/Berlin"}``: the target is active on those days from ``from``
(inclusive) to ``to`` (exclusive), on the wall clock of the time zone (so the
hours follow its daylight-saving changes). ``to`` before ``from`` crosses
midnight: the hours belong to the day they start on ("fri 22:00-06:00" covers
Saturday 05:00); ``from`` equal to ``to`` is the whole day. A target without
working hours is always active. Routing asks ``active_at`` with the time the
event happened (the alert opened, the reminder fell due), not the time routing
runs, so a routing outage cannot move an alert into other hours, and tests can
give any time.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from medic.errors import InvalidArgument

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIELDS = ("days", "from", "to", "timezone")


@dataclass(frozen=True)
class ActiveHours:
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: dt.time
    end: dt.time
    timezone: str

    def active_at(self, at: dt.datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        day, now = local.weekday(), local.time().replace(tzinfo=None)
        if self.start == self.end:
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= now < self.end
        # Crossing midnight: the evening of a listed day, or the morning after one.
        return (day in self.days and now >= self.start) or ((day - 1) % 7 in self.days and now < self.end)

    def to_json(self) -> dict[str, Any]:
        return {"days": [DAYS[d] for d in sorted(self.days)], "from": self.start.strftime("%H:%M"),
                "to": self.end.strftime("%H:%M"), "timezone": self.timezone}


def _time(value: Any, name: str) -> dt.time:
    if not isinstance(value, str):
        raise InvalidArgument(f"active_hours.{name} must be a time as HH:MM (24-hour)")
    try:
        hours, minutes = value.strip().split(":")
        if len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
            raise ValueError
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise InvalidArgument(f"active_hours.{name} must be a time as HH:MM (24-hour)") from None


def parse(value: Mapping[str, Any] | None) -> ActiveHours | None:
    """Working hours from their JSON form (None: always active); InvalidArgument
    naming the field otherwise."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument("active_hours must be an object with days, from, to and timezone")
    for name in value:
        if name not in FIELDS:
            raise InvalidArgument(f"active_hours.{name} is not a field (fields: {', '.join(FIELDS)})")
    days = value.get("days")
    if not isinstance(days, list) or not days or not all(isinstance(d, str) for d in days):
        raise InvalidArgument(f"active_hours.days must be a non-empty list of {', '.join(DAYS)}")
    wanted = set()
    for day in days:
        key = day.strip().lower()[:3]
        if key not in DAYS or day.strip().lower() not in (key, _full(key)):
            raise InvalidArgument(f"active_hours.days: {day!r} is not one of {', '.join(DAYS)}")
        wanted.add(DAYS.index(key))
    zone = value.get("timezone")
    if not isinstance(zone, str) or not zone.strip():
        raise InvalidArgument("active_hours.timezone is required (an IANA time zone, e.g. Europe/Berlin)")
    try:
        ZoneInfo(zone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"active_hours.timezone {zone!r} is not an IANA time zone") from None
    return ActiveHours(frozenset(wanted), _time(value.get("from"), "from"), _time(value.get("to"), "to"),
                       zone.strip())


def _full(key: str) -> str:
    return {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
            "sat": "saturday", "sun": "sunday"}[key]
