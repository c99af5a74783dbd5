"""How values look on a page: times, durations, states, enum names.

Times are rendered in UTC inside ``<time datetime=...>`` with the UTC text as
a tooltip; the console's script rewrites the visible text in the browser's
time zone (so a page without JavaScript still shows a correct, labelled time).
"""
from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

from medic import enums

# A value's word on a page is the string Medic stores and speaks (``medic.enums``).
PRIORITIES = enums.PRIORITY.numbers
PRIORITY_NAMES = enums.PRIORITY.names
NOTIFY_MODES = enums.NOTIFY_MODE.numbers
NOTIFY_MODE_NAMES = enums.NOTIFY_MODE.names
STATE_NAMES = enums.SERVICE_STATE.names
REASONS = enums.ALERT_REASON.numbers
REASON_NAMES = enums.ALERT_REASON.names
DELIVERY_STATUSES = enums.DELIVERY_STATUS.numbers
DELIVERY_STATUS_NAMES = enums.DELIVERY_STATUS.names
TARGET_TYPES = enums.TARGET_TYPE.numbers
TARGET_TYPE_NAMES = enums.TARGET_TYPE.names
EVENT_KIND_NAMES = enums.ALERT_EVENT_KIND.names
RUN_STATUS_NAMES = enums.RUN_STATUS.names
SCOPES = enums.SCOPE.numbers
SCOPE_NAMES = enums.SCOPE.names
EXECUTION_STATUS_NAMES = enums.EXECUTION_STATUS.names
STEP_STATUS_NAMES = enums.STEP_STATUS.names
APPROVAL_NAMES = enums.APPROVAL_MODE.names

# Word and icon for every state a person sees; colour only reinforces them.
CONDITION_ICONS = {"up": "up", "down": "down", "new": "new", "muted": "muted", "inactive": "inactive",
                   "active": "down", "closed": "up", "success": "up", "failed": "down", "retrying": "new",
                   "pending": "new", "skipped": "inactive", "pending_approval": "new", "running": "new",
                   "waiting": "new", "completed": "up", "cancelled": "inactive", "rejected": "inactive"}


def _datetime(ts) -> dt.datetime | None:
    if ts is None or (not ts.seconds and not ts.nanos):
        return None
    return ts.ToDatetime(tzinfo=dt.timezone.utc)


def utc_text(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def time_tag(ts, empty: str = "never") -> Markup:
    when = _datetime(ts)
    if when is None:
        return Markup(f'<span class="muted-text">{escape(empty)}</span>')
    # f-strings over Markup.format in the per-row filters: a third of a 50-row
    # page's render; the only text from outside goes through escape().
    iso = when.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = utc_text(when)
    return Markup(f'<time datetime="{iso}" title="{text}" data-local>{text}</time>')


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def run_duration(run) -> str:
    """A run's duration for people: ms under a second, then seconds, then minutes."""
    if not run.HasField("duration_ms"):
        return "open" if not run.HasField("completed_at") else "unknown"
    ms = run.duration_ms
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return duration(ms / 1000)


def duration_chart(runs) -> Markup:
    """The durations of ``runs`` (newest first, as listed) as an SVG bar chart, oldest
    on the left, each bar's height relative to the longest; failed runs striped. Runs
    of unknown duration are left out. Server-rendered: no script draws it."""
    known = [run for run in reversed(runs) if run.HasField("duration_ms")]
    if not known:
        return Markup("")
    longest = max(run.duration_ms for run in known) or 1
    bars = []
    for index, run in enumerate(known):
        height = max(2.0, round(run.duration_ms / longest * 60, 1))
        status = RUN_STATUS_NAMES.get(run.status, "")
        bars.append(Markup('<rect x="{}" y="{}" width="9" height="{}" class="{}"><title>{}</title></rect>').format(
            index * 10, round(64 - height, 1), height, "tl-fail" if status == "failed" else "tl-beat",
            f"{run.run_id or 'run'} {status}: {run_duration(run)}"))
    label = (f"Durations of the last {len(known)} runs with a known duration, oldest first; "
             f"the longest took {run_duration(max(known, key=lambda run: run.duration_ms))}")
    return Markup('<svg class="timeline" id="duration-chart" viewBox="0 0 {} 64" preserveAspectRatio="none" '
                  'role="img" aria-label="{}">{}</svg>').format(len(known) * 10, label, Markup("").join(bars))


def since(ts) -> str:
    when = _datetime(ts)
    if when is None:
        return ""
    return duration((dt.datetime.now(dt.timezone.utc) - when).total_seconds())


def countdown(ts) -> Markup:
    """Time left until ``ts``, kept live in the browser (data-countdown)."""
    when = _datetime(ts)
    if when is None:
        return Markup('<span class="muted-text">no deadline (inactive)</span>')
    left = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    iso = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text = f"in {duration(left)}" if left > 0 else f"overdue by {duration(-left)}"
    return Markup(f'<span data-countdown="{iso}" title="{utc_text(when)}">{text}</span>')


def condition(service) -> str:
    """The one word the services table shows for a service."""
    if not service.active:
        return "inactive"
    return STATE_NAMES.get(service.state, "new")


def badge(word: str, label: str | None = None) -> Markup:
    icon = CONDITION_ICONS.get(word, "new")
    return Markup(f'<span class="badge badge-{escape(word)}"><svg class="icon" aria-hidden="true">'
                  f'<use href="#i-{icon}"/></svg>{escape(label or word)}</span>')


def service_badges(service) -> Markup:
    out = badge(condition(service))
    if service.muted:
        out += Markup(" ") + badge("muted")
    return out


def snapshot_summary(data: dict) -> str:
    """A snapshot's settings in one line, for people (the whole is shown beside it)."""
    parts = []
    if "alert_interval_seconds" in data:
        parts.append(f"every {data['alert_interval_seconds']} s")
    if "threshold" in data:
        parts.append(f"threshold {data['threshold']}")
    for flag, yes, no in (("active", "active", "inactive"), ("muted", "muted", "not muted")):
        if flag in data:
            parts.append(yes if data[flag] else no)
    for name in ("team", "priority"):
        if data.get(name):
            parts.append(f"{name} {data[name]}")
    return " · ".join(parts)


def enum_name(value: int, names: dict) -> str:
    return names.get(value, "")


def install(env) -> None:
    env.filters.update(time=time_tag, since=since, countdown=countdown, duration=duration,
                       badge=badge, service_badges=service_badges, condition=condition,
                       priority=lambda v: PRIORITY_NAMES.get(v, ""),
                       notify_mode=lambda v: NOTIFY_MODE_NAMES.get(v, ""),
                       state=lambda v: STATE_NAMES.get(v, "unspecified"),
                       reason=lambda v: REASON_NAMES.get(v, ""),
                       delivery_status=lambda v: DELIVERY_STATUS_NAMES.get(v, ""),
                       target_type=lambda v: TARGET_TYPE_NAMES.get(v, ""),
                       event_kind=lambda v: EVENT_KIND_NAMES.get(v, ""),
                       run_status=lambda v: RUN_STATUS_NAMES.get(v, ""), run_duration=run_duration,
                       duration_chart=duration_chart, snapshot_summary=snapshot_summary,
                       execution_status=lambda v: EXECUTION_STATUS_NAMES.get(v, ""),
                       step_status=lambda v: STEP_STATUS_NAMES.get(v, ""),
                       approval=lambda v: APPROVAL_NAMES.get(v, ""),
                       scopes=lambda values: ", ".join(SCOPE_NAMES.get(v, "?") for v in values))
    env.globals.update(PRIORITIES=list(PRIORITIES), NOTIFY_MODES=list(NOTIFY_MODES),
                       REASONS=list(REASONS), DELIVERY_STATUSES=list(DELIVERY_STATUSES),
                       TARGET_TYPES=list(TARGET_TYPES), escape=escape)
