"""Whether a notification is sent, and if not, the one reason why: the one place
that decides it, for the heartbeat service (an alert's TRIGGER, REMINDERs,
RESOLVE and acknowledgement, before they leave for routing) and for routing
(each target of an event, by its working hours) alike.

The reasons, in the order they are checked:

* ``window``: a maintenance window covering the service is open (TRIGGER and
  REMINDER; the notification is due again when the window ends);
* ``muted``: the service is muted (TRIGGER and REMINDER);
* ``acknowledged``: someone acknowledged the alert (REMINDER, and a TRIGGER a
  window held back);
* ``outside_active_hours``: the target's working hours do not include the
  event's time (TRIGGER and REMINDER, per target);
* ``never_notified``: a RESOLVE or an acknowledgement of an alert nobody was
  told about.

A RESOLVE and an acknowledgement go to whoever was told of the alert whatever
the window, mute or hour: an incident opened elsewhere must be closed.
Pure: reads nothing, and cheap enough to run for every notification.
"""
from __future__ import annotations

import enum
from typing import NamedTuple


class SkipReason(enum.StrEnum):
    WINDOW = "window"
    MUTED = "muted"
    ACKNOWLEDGED = "acknowledged"
    OUTSIDE_ACTIVE_HOURS = "outside_active_hours"
    NEVER_NOTIFIED = "never_notified"


# Notification kinds (the alert_notifications.kind and deliveries.kind values).
TRIGGER = "trigger"
REMINDER = "reminder"
RESOLVE = "resolve"
ACKNOWLEDGE = "acknowledge"
# Kinds that close or follow up on what was sent: they go to whoever was told.
FOLLOW_UPS = frozenset({RESOLVE, ACKNOWLEDGE})
# A maintenance window's announcements (of no alert): judged like a TRIGGER,
# so a target outside its working hours is not sent one.
WINDOW_STARTED = "window_started"
WINDOW_ENDED = "window_ended"
ANNOUNCEMENTS = frozenset({WINDOW_STARTED, WINDOW_ENDED})


class Quiet(NamedTuple):
    """What may keep a notification from being sent. ``window``: the id of the
    open maintenance window covering the service (0: none)."""
    window: int = 0
    muted: bool = False
    acknowledged: bool = False
    outside_active_hours: bool = False
    # The alert was told of already (a TRIGGER or REMINDER was handed on).
    alert_notified: bool = False


class Notify(NamedTuple):
    send: bool
    skip_reason: SkipReason | None = None


SEND = Notify(True)
_SKIP = {reason: Notify(False, reason) for reason in SkipReason}


def decide_notification(kind: str, quiet: Quiet = Quiet()) -> Notify:
    """Whether a notification of ``kind`` is sent given ``quiet``, and if not, why."""
    if kind in FOLLOW_UPS:
        return SEND if quiet.alert_notified else _SKIP[SkipReason.NEVER_NOTIFIED]
    if quiet.window:
        return _SKIP[SkipReason.WINDOW]
    if quiet.muted:
        return _SKIP[SkipReason.MUTED]
    if quiet.acknowledged:
        return _SKIP[SkipReason.ACKNOWLEDGED]
    if quiet.outside_active_hours:
        return _SKIP[SkipReason.OUTSIDE_ACTIVE_HOURS]
    return SEND
