"""The down rule (SPEC section 2) as pure functions.

Let h_k be the time of the ``threshold``-th most recent counting heartbeat, or
the registration / re-activation time when there are fewer (or when that is
later: heartbeats from before a re-activation do not count).
``deadline = h_k + alert_interval + grace_period``; at ``now >= deadline`` the
service is overdue.

The ingest's steady statement (``RECORD_STEADY_HEARTBEATS`` in store.py) applies
``apply_heartbeats`` in SQL for its common case (an up, active service, signs of
life only); tests/integration/test_ingest_store.py holds the two to the same results.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from medic.errors import InvalidArgument

MAX_STATUS_LENGTH = 64
MAX_RUN_ID_LENGTH = 255
# Reported failures: recorded, never counted as a sign of life.
FAILURE_STATUSES = frozenset({"FAILED", "DOWN"})


def normalize_status(raw: str) -> str:
    """Any non-empty word of at most 64 characters, stored upper-case."""
    status = raw.strip() if isinstance(raw, str) else ""
    if not status:
        raise InvalidArgument("status must be a non-empty string")
    if len(status) > MAX_STATUS_LENGTH:
        raise InvalidArgument(f"status must be at most {MAX_STATUS_LENGTH} characters")
    if "\x00" in status:
        raise InvalidArgument("status must not contain NUL characters")
    return status.upper()


def validate_run_id(run_id: str) -> str | None:
    if not run_id:
        return None
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise InvalidArgument(f"run_id must be at most {MAX_RUN_ID_LENGTH} characters")
    if "\x00" in run_id:
        raise InvalidArgument("run_id must not contain NUL characters")
    return run_id


def counts_as_life(status: str) -> bool:
    return status not in FAILURE_STATUSES


def push_beat(recent: Sequence[dt.datetime], at: dt.datetime, threshold: int) -> list[dt.datetime]:
    """The newest-first list of counting heartbeat times after one more at ``at``."""
    return [at, *recent][:threshold]


def deadline(recent: Sequence[dt.datetime], threshold: int, activated_at: dt.datetime,
             interval_seconds: int, grace_seconds: int) -> dt.datetime:
    """When the service becomes overdue. ``recent`` is newest first."""
    h_k = recent[threshold - 1] if len(recent) >= threshold else activated_at
    h_k = max(h_k, activated_at)
    return h_k + dt.timedelta(seconds=interval_seconds + grace_seconds)


def is_overdue(deadline_at: dt.datetime | None, now: dt.datetime) -> bool:
    return deadline_at is not None and now >= deadline_at


# NamedTuples, not frozen dataclasses: the ingest builds one of each per service
# of a batch, and a frozen dataclass costs several times more to build.
class Clock(NamedTuple):
    """What the down rule needs to know about a service."""
    threshold: int
    activated_at: dt.datetime
    interval_seconds: int
    grace_seconds: int
    recent: tuple[dt.datetime, ...]
    state: str  # new | up | down


class AfterHeartbeats(NamedTuple):
    recent: list[dt.datetime]
    deadline_at: dt.datetime
    state: str
    # In order: ("open", "reported_failure") when a failure opens an alert,
    # ("close", "recovered") when a sign of life makes the rule hold again.
    events: tuple[tuple[str, str], ...] = ()


def apply_heartbeats(clock: Clock, statuses: Sequence[str], now: dt.datetime) -> AfterHeartbeats:
    """A service's clock and state after heartbeats with ``statuses`` arrived at ``now``,
    taken one by one in arrival order (so the result does not depend on how they
    were batched).

    A reported failure makes the service ``down`` and opens an alert (unless it
    is down already). A sign of life after which the rule holds makes it ``up``
    (from ``new``, or back from ``down``, which resolves the alert).
    """
    recent = list(clock.recent)
    state = clock.state
    events: list[tuple[str, str]] = []
    new_deadline = None
    for status in statuses:
        if not counts_as_life(status):
            if state != "down":
                state = "down"
                events.append(("open", "reported_failure"))
            continue
        recent = push_beat(recent, now, clock.threshold)
        new_deadline = deadline(recent, clock.threshold, clock.activated_at,
                                clock.interval_seconds, clock.grace_seconds)
        if not is_overdue(new_deadline, now):
            if state == "down":
                events.append(("close", "recovered"))
            state = "up"
    if new_deadline is None:  # only failures: the clock did not move
        new_deadline = deadline(recent, clock.threshold, clock.activated_at,
                                clock.interval_seconds, clock.grace_seconds)
    return AfterHeartbeats(recent=recent, deadline_at=new_deadline, state=state, events=tuple(events))


def reminder_after(now: dt.datetime, interval_seconds: int, minimum_seconds: float) -> dt.datetime:
    """When the next REMINDER of an open alert is due: every alert_interval, but
    never closer together than ``minimum_seconds``."""
    return now + dt.timedelta(seconds=max(interval_seconds, minimum_seconds))
