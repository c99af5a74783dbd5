"""The alert lifecycle of a service, as one state machine.

Every decision about a service's state, its alert and the notifications that
follow is made here, as pure functions of what happened; the stores and the
monitor carry the decisions out in the transaction that observed what happened
(``alert_store.execute``). Nothing here reads or writes the database.

A service is ``NEW`` (registered or re-activated, and no heartbeat has made the
down rule hold yet), ``UP``, or ``DOWN`` (its alert is open). The transitions:

======================================  ===========  =====  ==================  ===========
what happened                           from         to     reason              the alert
======================================  ===========  =====  ==================  ===========
a reported failure (``status.py``),    new, up      down   reported_failure    opens
  the failure_tolerance + 1-th in a row
a sign of life; the down rule holds     new          up     first_heartbeat
a success (a sign of life but STARTED)  down         up     recovered           closes
a run past max_duration (the monitor)   new, up      down   run_too_long        opens
that run ends                           down         up     run_ended           closes
a run completes under min_duration      new, up      down   run_too_fast        opens
the deadline passed (the monitor)       new, up      down   missed_heartbeats   opens
marked down by hand (an active service) new, up      down   reported_failure    opens
marked up by hand                       down         up     manual              closes
deactivated                             any          new    deactivated         closes
re-activated (the clock restarts)       any          new    activated
muted, unmuted                          s            s      muted, unmuted
a mute older than its time to live      s            s      mute_expired
  (or past its ``until``)
a mute without ``until``: recovery      up           up     mute_ended
the alert acknowledged                  down         down   acknowledged
======================================  ===========  =====  ==================  ===========

Each transition is recorded in ``service_transitions``. An open alert gets a
TRIGGER when it opens, a REMINDER every ``alert_interval`` (never closer
together than ``LifecyclePolicy.reminder_min_seconds``) while it stays open, and
a RESOLVE when it closes; ``medic.quiet.decide_notification`` says whether each
one is sent and, if not, why (a maintenance window, a mute, an acknowledgement).
"""
from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from medic import quiet
from medic.quiet import SEND, Notify, Quiet, SkipReason, decide_notification  # noqa: F401 (the lifecycle's vocabulary)
from services.heartbeat.deadline import deadline, is_overdue, push_beat
from services.heartbeat.schedule import Schedule
from services.heartbeat.status import counts_as_life, counts_as_success, is_start


class ServiceState(enum.StrEnum):
    """A service's state (``services.state``)."""
    NEW = "new"
    UP = "up"
    DOWN = "down"


class AlertReason(enum.StrEnum):
    """Why an alert opened (``alerts.reason``); a transition with one opens the alert."""
    MISSED_HEARTBEATS = "missed_heartbeats"
    REPORTED_FAILURE = "reported_failure"
    RUN_TOO_LONG = "run_too_long"
    RUN_TOO_FAST = "run_too_fast"


class ResolveReason(enum.StrEnum):
    """Why an alert closed; a transition with one closes the alert, if one is open."""
    RECOVERED = "recovered"
    MANUAL = "manual"
    RUN_ENDED = "run_ended"  # the run whose overrun opened the alert ended
    DEACTIVATED = "deactivated"


class ChangeReason(enum.StrEnum):
    """A transition that neither opens nor closes an alert."""
    FIRST_HEARTBEAT = "first_heartbeat"
    ACTIVATED = "activated"
    MUTED = "muted"
    UNMUTED = "unmuted"
    MUTE_EXPIRED = "mute_expired"
    # A mute without an end is lifted when its service recovers.
    MUTE_ENDED = "mute_ended"
    ACKNOWLEDGED = "acknowledged"


Reason = AlertReason | ResolveReason | ChangeReason


class AlertChange(enum.Enum):
    OPEN = "open"
    CLOSE = "close"


class NotificationKind(enum.StrEnum):
    """An alert's notifications (``alert_notifications.kind``), in the order routing sees them."""
    TRIGGER = quiet.TRIGGER
    REMINDER = quiet.REMINDER
    ACKNOWLEDGE = quiet.ACKNOWLEDGE
    RESOLVE = quiet.RESOLVE


class Transition(NamedTuple):
    """One step of a service (a row of ``service_transitions``)."""
    from_state: ServiceState
    to_state: ServiceState
    reason: Reason
    # The heartbeat of the batch that caused it (its index), for the run it is about.
    item: int | None = None

    @property
    def alert(self) -> AlertChange | None:
        """What the step does to the service's alert, by its reason."""
        if isinstance(self.reason, AlertReason):
            return AlertChange.OPEN
        if isinstance(self.reason, ResolveReason):
            return AlertChange.CLOSE
        return None


@dataclass(frozen=True)
class LifecyclePolicy:
    # REMINDERs come every alert_interval, but never closer together than this.
    reminder_min_seconds: float = 60.0

    def next_reminder_at(self, now: dt.datetime, interval_seconds: int) -> dt.datetime:
        """When the next REMINDER of an alert open (or reminded) at ``now`` is due."""
        return now + dt.timedelta(seconds=max(interval_seconds, self.reminder_min_seconds))


# --- heartbeats ---------------------------------------------------------------

# NamedTuples, not frozen dataclasses: the ingest builds one of each per service
# of a batch, and a frozen dataclass costs several times more to build.
class Clock(NamedTuple):
    """What the down rule and the lifecycle need to know about a service."""
    threshold: int
    activated_at: dt.datetime
    interval_seconds: int
    grace_seconds: int
    recent: tuple[dt.datetime, ...]
    state: str  # a ServiceState value
    schedule: Schedule | None = None
    failure_tolerance: int = 0
    failures: int = 0  # reported failures in a row so far
    open_alert: str | None = None  # the reason of the open alert (a service that is down)


class RunEnd(enum.Enum):
    """What a heartbeat that ended a run tells the lifecycle besides its status."""
    OVERRAN = "overran"    # the run had passed max_duration (its run_too_long alert may be open)
    TOO_FAST = "too_fast"  # it completed under min_duration


class AfterHeartbeats(NamedTuple):
    recent: list[dt.datetime]
    deadline_at: dt.datetime
    state: ServiceState
    # The transitions the heartbeats caused, in order.
    events: tuple[Transition, ...] = ()
    failures: int = 0  # reported failures in a row after them


def apply_heartbeats(clock: Clock, statuses: Sequence[str], now: dt.datetime,
                     runs: Sequence[RunEnd | None] = ()) -> AfterHeartbeats:
    """A service's clock and state after heartbeats with ``statuses`` arrived at ``now``,
    taken one by one in arrival order (so the result does not depend on how they
    were batched). ``runs``, when given, says for each heartbeat what the run it
    ended tells (``RunEnd``, or None).

    A reported failure counts one more failure in a row; the
    ``failure_tolerance + 1``-th makes the service ``down`` and opens an alert
    (unless it is down already). Every sign of life moves the clock (a start
    too); a success (a sign of life other than STARTED) resets the count and,
    when the down rule holds after it, makes the service ``up`` (from ``new``,
    or back from ``down``, which resolves the alert). A start resolves nothing
    (the run has yet to succeed). The end of a run that overran closes its
    ``run_too_long`` alert first; a run completed too fast opens
    ``run_too_fast`` after its success. Transitions are recorded between the
    states the alert changes leave behind: a batch that takes a ``new`` service
    up without opening or closing an alert records one ``first_heartbeat``.
    """
    recent = list(clock.recent)
    start = state = ServiceState(clock.state)
    recorded = start  # the state as the recorded transitions leave it
    open_alert = clock.open_alert if start is ServiceState.DOWN else None
    failures = clock.failures
    events: list[Transition] = []
    new_deadline = None
    for index, status in enumerate(statuses):
        run = runs[index] if index < len(runs) else None
        if run is RunEnd.OVERRAN and state is ServiceState.DOWN and open_alert == AlertReason.RUN_TOO_LONG:
            events.append(Transition(ServiceState.DOWN, ServiceState.UP, ResolveReason.RUN_ENDED, index))
            state = recorded = ServiceState.UP
            open_alert = None
        if not counts_as_life(status):
            failures += 1
            if state is not ServiceState.DOWN and failures > clock.failure_tolerance:
                events.append(Transition(recorded, ServiceState.DOWN, AlertReason.REPORTED_FAILURE, index))
                state = recorded = ServiceState.DOWN
                open_alert = AlertReason.REPORTED_FAILURE
            continue
        recent = push_beat(recent, now, clock.threshold)
        new_deadline = deadline(recent, clock.threshold, clock.activated_at,
                                clock.interval_seconds, clock.grace_seconds, clock.schedule)
        holds = not is_overdue(new_deadline, now)
        if is_start(status):
            if holds and state is ServiceState.NEW:
                state = ServiceState.UP
            continue
        if counts_as_success(status):
            failures = 0
        if holds:
            if state is ServiceState.DOWN:
                events.append(Transition(ServiceState.DOWN, ServiceState.UP, ResolveReason.RECOVERED, index))
                recorded = ServiceState.UP
                open_alert = None
            state = ServiceState.UP
        if run is RunEnd.TOO_FAST and state is not ServiceState.DOWN:
            events.append(Transition(recorded, ServiceState.DOWN, AlertReason.RUN_TOO_FAST, index))
            state = recorded = ServiceState.DOWN
            open_alert = AlertReason.RUN_TOO_FAST
    if new_deadline is None:  # only failures: the clock did not move
        new_deadline = deadline(recent, clock.threshold, clock.activated_at,
                                clock.interval_seconds, clock.grace_seconds, clock.schedule)
    if not events and start is ServiceState.NEW and state is ServiceState.UP:
        events.append(Transition(ServiceState.NEW, ServiceState.UP, ChangeReason.FIRST_HEARTBEAT))
    return AfterHeartbeats(recent=recent, deadline_at=new_deadline, state=state, events=tuple(events),
                           failures=failures)


# --- changes made through UpdateService ------------------------------------------

class AfterUpdate(NamedTuple):
    state: ServiceState
    events: tuple[Transition, ...]
    restarts_clock: bool  # re-activated: heartbeats from before no longer count


def apply_update(state: str, *, active: bool, muted: bool, to_active: bool, to_muted: bool,
                 down: bool | None) -> AfterUpdate:
    """A service's state after an update from (``active``, ``muted``) to
    (``to_active``, ``to_muted``), marked down (``down`` true) or up (false) by
    hand or neither (None). Deactivating closes the open alert and re-activating
    restarts the clock; both leave the service ``new``. Marking down opens an
    alert (only for an active service not down already); marking up closes it
    (only for a service that is down)."""
    state = ServiceState(state)
    events: list[Transition] = []
    if to_muted != muted:
        events.append(Transition(state, state, ChangeReason.MUTED if to_muted else ChangeReason.UNMUTED))
    if to_active != active:
        reason = ChangeReason.ACTIVATED if to_active else ResolveReason.DEACTIVATED
        events.append(Transition(state, ServiceState.NEW, reason))
        state = ServiceState.NEW
    if down is True and to_active and state is not ServiceState.DOWN:
        events.append(Transition(state, ServiceState.DOWN, AlertReason.REPORTED_FAILURE))
        state = ServiceState.DOWN
    elif down is False and state is ServiceState.DOWN:
        events.append(Transition(ServiceState.DOWN, ServiceState.UP, ResolveReason.MANUAL))
        state = ServiceState.UP
    return AfterUpdate(state, tuple(events), restarts_clock=to_active and not active)


# --- the monitor ----------------------------------------------------------------

# The monitor looks for overdue services among the active ones in every state but
# this one (a down service has its alert open already).
NOT_WATCHED = ServiceState.DOWN


def run_too_long(state: str) -> Transition:
    """The transition of a service whose run stayed open past max_duration_seconds."""
    return Transition(ServiceState(state), ServiceState.DOWN, AlertReason.RUN_TOO_LONG)


def overdue(state: str) -> Transition:
    """The transition of a service found overdue (re-checked by the down rule)."""
    return Transition(ServiceState(state), ServiceState.DOWN, AlertReason.MISSED_HEARTBEATS)


def mute_ended(state: str) -> Transition:
    """The service recovered while muted with no end set: the mute ends with it."""
    state = ServiceState(state)
    return Transition(state, state, ChangeReason.MUTE_ENDED)


def acknowledged(state: str) -> Transition:
    state = ServiceState(state)
    return Transition(state, state, ChangeReason.ACKNOWLEDGED)


# Closing an alert for these lifts a mute that has no end.
RECOVERY = (ResolveReason.RECOVERED, ResolveReason.MANUAL)


def mute_expired(state: str) -> Transition:
    """The transition of a service whose mute outlived its time to live
    (``MEDIC_MUTE_TTL_SECONDS``); the mute is lifted."""
    state = ServiceState(state)
    return Transition(state, state, ChangeReason.MUTE_EXPIRED)


class Reminder(NamedTuple):
    kind: NotificationKind  # what is due: the TRIGGER when none was sent yet, else a REMINDER
    notify: Notify
    reminders: int  # reminders sent so far, this one included when it is sent
    next_at: dt.datetime


def remind(reminders: int, *, quiet: Quiet, window_end: dt.datetime | None = None, trigger_sent: bool = True,
           interval_seconds: int, now: dt.datetime, policy: LifecyclePolicy) -> Reminder:
    """A notification of an open alert is due at ``now``: the TRIGGER if none was
    sent yet (a window or a mute held it back), else a REMINDER. Whether it is
    sent, and when the next one is due: at the end of the window that held it
    back (so a service still down when its window ends is notified at once),
    else an interval later (reminders skipped while muted or acknowledged are
    not made up later)."""
    kind = NotificationKind.REMINDER if trigger_sent else NotificationKind.TRIGGER
    notify = decide_notification(kind, quiet)
    sent_reminder = notify.send and kind is NotificationKind.REMINDER
    if not notify.send and notify.skip_reason is SkipReason.WINDOW and window_end is not None:
        next_at = window_end
    else:
        next_at = policy.next_reminder_at(now, interval_seconds)
    return Reminder(kind, notify, reminders + 1 if sent_reminder else reminders, next_at)


def held_back(notify: Notify, window_end: dt.datetime | None, now: dt.datetime, interval_seconds: int,
              policy: LifecyclePolicy) -> dt.datetime:
    """When an alert whose TRIGGER got ``notify`` is next looked at: the end of
    the window that held the TRIGGER back, else an interval later."""
    if not notify.send and notify.skip_reason is SkipReason.WINDOW and window_end is not None:
        return window_end
    return policy.next_reminder_at(now, interval_seconds)
