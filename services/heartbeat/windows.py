"""Maintenance windows: which services a window covers, and when it is open.

A window has a scope (one service, a team, every service, or the services whose
heartbeat name matches a glob) and is either one-off (``starts_at`` ..
``ends_at``) or recurring: a cron expression evaluated in an IANA time zone
(through ``cronsim``, which defines what a daylight-saving change does to a
schedule the way cron does: a start in the skipped hour runs at the first minute
after it, a start in the repeated hour runs once), each occurrence lasting
``duration_seconds`` of elapsed time. Occurrences that overlap (a duration
longer than the gap to the next start) make one open stretch.

``WindowBook`` holds every window of the database in memory for the monitor and
the ingest: matching a service against the scopes is remembered per service
(it does not depend on the time), and each recurring window remembers the
stretch it computed until the time passes it, so deciding for one service costs
a few dictionary lookups and comparisons. Nothing here reads the database.
"""
from __future__ import annotations

import datetime as dt
import enum
import fnmatch
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from medic.errors import InvalidArgument

MIN_DURATION_SECONDS = 60
MAX_DURATION_SECONDS = 365 * 24 * 3600
# A run of overlapping recurring occurrences is followed this far at most (a
# schedule whose occurrences always overlap never ends: its stretch is cut here,
# and a service held back until then is simply held again).
MAX_CHAINED_OCCURRENCES = 48
MAX_TEXT = 255
MAX_REASON = 1000
UTC = dt.timezone.utc
# "Never" for a window that will not open again.
FAR = dt.timedelta(days=3650)


class Scope(enum.StrEnum):
    SERVICE = "service"
    TEAM = "team"
    ALL = "all"
    GLOB = "glob"


class ServiceKey(NamedTuple):
    """What a scope matches a service by."""
    service_id: int
    team: str
    heartbeat_name: str


class Stretch(NamedTuple):
    """An open window: its current occurrence started at ``start``, and it stays
    open until ``end``."""
    window_id: int
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Window:
    window_id: int
    scope: Scope
    reason: str
    created_by: str = ""
    service_id: int | None = None
    team: str | None = None
    name_glob: str | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    cron: str | None = None
    duration_seconds: int | None = None
    timezone: str | None = None
    # Each occurrence's start and end are announced to the services in scope (announcements.py).
    announce: bool = False

    @property
    def recurring(self) -> bool:
        return self.cron is not None

    def covers(self, service: ServiceKey) -> bool:
        """Whether the window's scope includes ``service`` (at any time)."""
        if self.scope is Scope.ALL:
            return True
        if self.scope is Scope.SERVICE:
            return self.service_id == service.service_id
        if self.scope is Scope.TEAM:
            return (self.team or "").casefold() == service.team.casefold()
        return _glob(self.name_glob or "").fullmatch(service.heartbeat_name.casefold()) is not None

    def open_at(self, now: dt.datetime) -> Stretch | None:
        """The stretch of the window open at ``now``, or None."""
        if not self.recurring:
            assert self.starts_at is not None and self.ends_at is not None
            if self.starts_at <= now < self.ends_at:
                return Stretch(self.window_id, self.starts_at, self.ends_at)
            return None
        return _recurring_open_at(self, now)

    def next_start(self, now: dt.datetime) -> dt.datetime | None:
        """When the window next opens after ``now`` (None: never again)."""
        if not self.recurring:
            return self.starts_at if self.starts_at is not None and self.starts_at > now else None
        following = next(iter(CronSim(self.cron, now.astimezone(self.zone))), None)
        return following.astimezone(UTC) if following is not None else None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")


def _literal_prefix(pattern: str) -> str:
    """The text of a glob before its first wildcard, casefolded."""
    return re.split(r"[*?\[]", pattern.casefold(), maxsplit=1)[0]


def _glob(pattern: str) -> re.Pattern:
    return _compiled_glob(pattern.casefold())


_GLOBS: dict[str, re.Pattern] = {}


def _compiled_glob(pattern: str) -> re.Pattern:
    compiled = _GLOBS.get(pattern)
    if compiled is None:
        compiled = _GLOBS[pattern] = re.compile(fnmatch.translate(pattern))
    return compiled


def _recurring_open_at(window: Window, now: dt.datetime) -> Stretch | None:
    """The occurrence covering ``now``: the latest start at or before ``now``,
    if its occurrence has not ended (earlier ones end earlier), extended by the
    occurrences that start before it ends. The stretch's start is that latest
    start. Times are compared and added in UTC: Python adds and
    compares two times of the same zone by their wall clocks, which is wrong
    across a daylight-saving change."""
    zone = window.zone
    duration = dt.timedelta(seconds=window.duration_seconds or 0)
    # cronsim steps a minute at a time and excludes its starting point: start
    # the backward search just after the current minute.
    local = now.astimezone(zone).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    latest_local = next(iter(CronSim(window.cron, local, reverse=True)), None)
    if latest_local is None:
        return None
    latest = latest_local.astimezone(UTC)
    if latest + duration <= now:
        return None
    end = latest + duration
    following = CronSim(window.cron, latest_local)
    for _ in range(MAX_CHAINED_OCCURRENCES):
        upcoming = next(following, None)
        if upcoming is None or upcoming.astimezone(UTC) > end:
            break
        end = upcoming.astimezone(UTC) + duration
    return Stretch(window.window_id, latest, end)


def open_stretch(windows: Iterable[Window], now: dt.datetime) -> Stretch | None:
    """Of ``windows`` open at ``now``, the one open longest (overlapping windows
    keep a service quiet until the last of them ends); None when none is open."""
    best: Stretch | None = None
    for window in windows:
        stretch = window.open_at(now)
        if stretch is not None and (best is None or stretch.end > best.end):
            best = stretch
    return best


# --- validation ---------------------------------------------------------------------

def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"timezone {name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return name


def check_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    if len(expression.split()) != 5:
        raise InvalidArgument("cron must have five fields (minute hour day month weekday)")
    try:
        next(iter(CronSim(expression, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))))
    except (CronSimError, StopIteration) as err:
        raise InvalidArgument(f"cron {expression!r} is not a valid expression: {err}") from None
    return expression


def _text(value: str, field_name: str, limit: int = MAX_TEXT) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{field_name} is required")
    if len(value) > limit:
        raise InvalidArgument(f"{field_name} must be at most {limit} characters")
    if "\x00" in value:
        raise InvalidArgument(f"{field_name} must not contain NUL characters")
    return value


def check_window(fields: dict) -> dict:
    """Checks a window's fields (as the store takes them) and returns them
    cleaned; raises InvalidArgument naming the field."""
    scope = fields.get("scope")
    if scope not in tuple(Scope):
        raise InvalidArgument("scope must be one of service, team, all, glob")
    out = dict(fields)
    out["reason"] = _text(fields.get("reason") or "", "reason", MAX_REASON)
    out["announce"] = bool(fields.get("announce"))
    out["service_id"] = out["team"] = out["name_glob"] = None
    if scope == Scope.SERVICE:
        if not fields.get("service_id") or fields["service_id"] < 1:
            raise InvalidArgument("service_id is required for scope service")
        out["service_id"] = fields["service_id"]
    elif scope == Scope.TEAM:
        out["team"] = _text(fields.get("team") or "", "team")
    elif scope == Scope.GLOB:
        out["name_glob"] = _text(fields.get("name_glob") or "", "name_glob")
    recurring = bool(fields.get("cron"))
    one_off = fields.get("starts_at") is not None or fields.get("ends_at") is not None
    if recurring and one_off:
        raise InvalidArgument("a window is one-off (starts_at, ends_at) or recurring (cron, duration_seconds, "
                              "timezone), not both")
    if recurring:
        out["cron"] = check_cron(fields["cron"])
        duration = fields.get("duration_seconds") or 0
        if not MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS:
            raise InvalidArgument(f"duration_seconds must be {MIN_DURATION_SECONDS}-{MAX_DURATION_SECONDS}")
        out["timezone"] = check_timezone(_text(fields.get("timezone") or "", "timezone", 64))
        out["starts_at"] = out["ends_at"] = None
    else:
        if fields.get("starts_at") is None or fields.get("ends_at") is None:
            raise InvalidArgument("starts_at and ends_at are required for a one-off window "
                                  "(or cron, duration_seconds and timezone for a recurring one)")
        if fields["ends_at"] <= fields["starts_at"]:
            raise InvalidArgument("ends_at must be after starts_at")
        if fields.get("duration_seconds") or fields.get("timezone"):
            raise InvalidArgument("duration_seconds and timezone are for recurring windows (with cron)")
        out["cron"] = out["duration_seconds"] = out["timezone"] = None
    return out


# --- the in-memory book -----------------------------------------------------------

@dataclass
class _Cached:
    """A recurring window's answer, valid while ``now`` is in [since, until)."""
    since: dt.datetime
    until: dt.datetime
    stretch: Stretch | None


@dataclass
class WindowBook:
    """Every window, indexed for ``open_for``; replaced whole by ``load``.

    Windows are kept in groups that services share: one service's, one team's,
    every service's, one glob pattern's. A service's groups are found once (its
    name tried only against the globs whose literal prefix it starts with), and
    each group's answer ("open until", or "closed until it next opens") is
    remembered until that moment, so a decision is a few dictionary lookups."""
    generation: int = -1
    windows: dict[int, Window] = field(default_factory=dict)
    _groups: dict[tuple, list[Window]] = field(default_factory=dict)
    # Glob patterns by the literal text before their first wildcard (casefolded).
    _globs: dict[str, list[str]] = field(default_factory=dict)
    _matched: dict = field(default_factory=dict)  # ServiceKey -> its groups' keys
    _recurring: dict[int, _Cached] = field(default_factory=dict)
    _answers: dict[tuple, _Cached] = field(default_factory=dict)  # group key -> answer
    _lock: threading.Lock = field(default_factory=threading.Lock)
    max_matched: int = 200_000

    def load(self, generation: int, windows: Iterable[Window]) -> None:
        groups: dict[tuple, list[Window]] = {}
        globs: dict[str, list[str]] = {}
        every = {}
        for window in windows:
            every[window.window_id] = window
            if window.scope is Scope.SERVICE:
                key: tuple = (Scope.SERVICE, window.service_id)
            elif window.scope is Scope.TEAM:
                key = (Scope.TEAM, (window.team or "").casefold())
            elif window.scope is Scope.ALL:
                key = (Scope.ALL,)
            else:
                pattern = (window.name_glob or "").casefold()
                key = (Scope.GLOB, pattern)
                if key not in groups:
                    globs.setdefault(_literal_prefix(pattern), []).append(pattern)
            groups.setdefault(key, []).append(window)
        with self._lock:
            self.windows, self._groups, self._globs = every, groups, globs
            self._matched, self._recurring, self._answers = {}, {}, {}
            self.generation = generation

    def _group_keys(self, service: ServiceKey) -> tuple[tuple, ...]:
        found = self._matched.get(service)
        if found is not None:
            return found
        groups = self._groups
        keys = [key for key in ((Scope.SERVICE, service.service_id), (Scope.TEAM, service.team.casefold()),
                                (Scope.ALL,)) if key in groups]
        if self._globs:
            name = service.heartbeat_name.casefold()
            for end in range(len(name) + 1):
                for pattern in self._globs.get(name[:end], ()):
                    if _glob(pattern).fullmatch(name) is not None:
                        keys.append((Scope.GLOB, pattern))
        found = tuple(keys)
        with self._lock:
            self._matched[service] = found
            if len(self._matched) > self.max_matched:
                self._matched.pop(next(iter(self._matched)))
        return found

    def matching(self, service: ServiceKey) -> list[Window]:
        """The windows whose scope includes ``service``, whenever they open."""
        return [w for key in self._group_keys(service) for w in self._groups[key]]

    def open_for(self, service: ServiceKey, now: dt.datetime) -> Stretch | None:
        """The window keeping ``service`` quiet at ``now`` (the one open
        longest, when several are), or None."""
        best: Stretch | None = None
        for key in self._group_keys(service):
            stretch = self._group_answer(key, now).stretch
            if stretch is not None and (best is None or stretch.end > best.end):
                best = stretch
        return best

    def _group_answer(self, key: tuple, now: dt.datetime) -> _Cached:
        """The group's open window (the one open longest), remembered until the
        first of its windows opens or closes."""
        answer = self._answers.get(key)
        if answer is not None and answer.since <= now < answer.until:
            return answer
        best: Stretch | None = None
        until = now + FAR
        for window in self._groups[key]:
            cached = self._cached(window, now)
            until = min(until, cached.until)
            stretch = cached.stretch
            if stretch is not None and (best is None or stretch.end > best.end):
                best = stretch
        answer = self._answers[key] = _Cached(now, until, best)
        return answer

    def state(self, window: Window, now: dt.datetime) -> tuple[Stretch | None, dt.datetime | None]:
        """(the window's open stretch at ``now``, else None; when it next opens,
        None when open or never again), from the book's remembered answers."""
        cached = self._cached(window, now)
        if cached.stretch is not None:
            return cached.stretch, None
        return None, cached.until if cached.until < now + FAR else None

    def _open_at(self, window: Window, now: dt.datetime) -> Stretch | None:
        return self._cached(window, now).stretch

    def _cached(self, window: Window, now: dt.datetime) -> _Cached:
        """The window at ``now``, with how long that answer holds (until it
        opens or closes next)."""
        if not window.recurring:
            assert window.starts_at is not None and window.ends_at is not None
            if now < window.starts_at:
                return _Cached(now, window.starts_at, None)
            if now < window.ends_at:
                return _Cached(window.starts_at, window.ends_at,
                               Stretch(window.window_id, window.starts_at, window.ends_at))
            return _Cached(window.ends_at, now + FAR, None)
        cached = self._recurring.get(window.window_id)
        if cached is not None and cached.since <= now < cached.until:
            return cached
        stretch = window.open_at(now)
        if stretch is not None:
            cached = _Cached(now, stretch.end, stretch)
        else:
            following = window.next_start(now)
            cached = _Cached(now, following or now + FAR, None)
        self._recurring[window.window_id] = cached
        return cached

    def open_windows(self, now: dt.datetime) -> list[Stretch]:
        """Every window open at ``now``."""
        stretches = (self._open_at(w, now) for w in self.windows.values())
        return [s for s in stretches if s is not None]
