"""How values look on a page: times, durations, states, enum names.

Times are rendered in UTC inside ``<time datetime=...>`` with the UTC text as
a tooltip; the console's script rewrites the visible text in the browser's
time zone (so a page without JavaScript still shows a correct, labelled time).
"""
from __future__ import annotations

import datetime as dt

from markupsafe import Markup, escape

from medic.v1 import common_pb2, delivery_pb2, events_pb2, heartbeat_pb2, options_pb2

PRIORITIES = {"p1": common_pb2.PRIORITY_P1, "p2": common_pb2.PRIORITY_P2, "p3": common_pb2.PRIORITY_P3,
              "p4": common_pb2.PRIORITY_P4, "p5": common_pb2.PRIORITY_P5}
PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}
NOTIFY_MODES = {"all": common_pb2.NOTIFY_MODE_ALL, "until_success": common_pb2.NOTIFY_MODE_UNTIL_SUCCESS}
NOTIFY_MODE_NAMES = {v: k for k, v in NOTIFY_MODES.items()}
STATE_NAMES = {heartbeat_pb2.SERVICE_STATE_NEW: "new", heartbeat_pb2.SERVICE_STATE_UP: "up",
               heartbeat_pb2.SERVICE_STATE_DOWN: "down"}
REASONS = {"missed_heartbeats": heartbeat_pb2.ALERT_REASON_MISSED_HEARTBEATS,
           "reported_failure": heartbeat_pb2.ALERT_REASON_REPORTED_FAILURE}
REASON_NAMES = {v: k for k, v in REASONS.items()}
DELIVERY_STATUSES = {"pending": delivery_pb2.DELIVERY_STATUS_PENDING,
                     "retrying": delivery_pb2.DELIVERY_STATUS_RETRYING,
                     "success": delivery_pb2.DELIVERY_STATUS_SUCCESS,
                     "failed": delivery_pb2.DELIVERY_STATUS_FAILED,
                     "skipped": delivery_pb2.DELIVERY_STATUS_SKIPPED}
DELIVERY_STATUS_NAMES = {v: k for k, v in DELIVERY_STATUSES.items()}
TARGET_TYPES = {"slack": delivery_pb2.TARGET_TYPE_SLACK, "pagerduty": delivery_pb2.TARGET_TYPE_PAGERDUTY,
                "webhook": delivery_pb2.TARGET_TYPE_WEBHOOK}
TARGET_TYPE_NAMES = {v: k for k, v in TARGET_TYPES.items()}
EVENT_KIND_NAMES = {events_pb2.ALERT_EVENT_KIND_TRIGGER: "trigger", events_pb2.ALERT_EVENT_KIND_REMINDER: "reminder",
                    events_pb2.ALERT_EVENT_KIND_RESOLVE: "resolve"}
SCOPES = {"read": options_pb2.SCOPE_READ, "write": options_pb2.SCOPE_WRITE, "admin": options_pb2.SCOPE_ADMIN}
SCOPE_NAMES = {v: k for k, v in SCOPES.items()}

# Word and icon for every state a person sees; colour only reinforces them.
CONDITION_ICONS = {"up": "up", "down": "down", "new": "new", "muted": "muted", "inactive": "inactive",
                   "active": "down", "closed": "up", "success": "up", "failed": "down", "retrying": "new",
                   "pending": "new", "skipped": "inactive"}


def _datetime(ts) -> dt.datetime | None:
    if ts is None or (not ts.seconds and not ts.nanos):
        return None
    return ts.ToDatetime(tzinfo=dt.timezone.utc)


def utc_text(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def time_tag(ts, empty: str = "never") -> Markup:
    when = _datetime(ts)
    if when is None:
        return Markup('<span class="muted-text">{}</span>').format(empty)
    iso = when.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = utc_text(when)
    return Markup('<time datetime="{}" title="{}" data-local>{}</time>').format(iso, text, text)


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
    return Markup('<span data-countdown="{}" title="{}">{}</span>').format(iso, utc_text(when), text)


def condition(service) -> str:
    """The one word the services table shows for a service."""
    if not service.active:
        return "inactive"
    return STATE_NAMES.get(service.state, "new")


def badge(word: str, label: str | None = None) -> Markup:
    icon = CONDITION_ICONS.get(word, "new")
    return Markup('<span class="badge badge-{w}"><svg class="icon" aria-hidden="true"><use href="#i-{i}"/></svg>'
                  '{label}</span>').format(w=word, i=icon, label=label or word)


def service_badges(service) -> Markup:
    out = badge(condition(service))
    if service.muted:
        out += Markup(" ") + badge("muted")
    return out


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
                       scopes=lambda values: ", ".join(SCOPE_NAMES.get(v, "?") for v in values))
    env.globals.update(PRIORITIES=list(PRIORITIES), NOTIFY_MODES=list(NOTIFY_MODES),
                       REASONS=list(REASONS), DELIVERY_STATUSES=list(DELIVERY_STATUSES),
                       TARGET_TYPES=list(TARGET_TYPES), escape=escape)
