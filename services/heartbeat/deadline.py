"""The down rule: when a service becomes overdue.

Let h_k be the time of the ``threshold``-th most recent counting heartbeat (a
sign of life, ``status.counts_as_life``), or the registration / re-activation
time when there are fewer, or when that is later: heartbeats from before a
re-activation do not count. ``deadline = h_k + alert_interval + grace_period``;
at ``now >= deadline`` the service is overdue.

A service on a cron ``schedule`` (``schedule.py``) is expected at the schedule's
times instead: its deadline is the ``threshold``-th scheduled time after its
latest counting heartbeat (or its registration / re-activation time, when that
is later or there is none), plus the grace period.

The ingest's steady statement (``RECORD_STEADY_HEARTBEATS`` in heartbeat_store.py)
computes the same deadline in SQL for its common case (an up, active service,
signs of life only); tests/integration/test_ingest_store.py holds the two to the
same results.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from services.heartbeat.schedule import Schedule


def push_beat(recent: Sequence[dt.datetime], at: dt.datetime, threshold: int) -> list[dt.datetime]:
    """The newest-first list of counting heartbeat times after one more at ``at``."""
    return [at, *recent][:threshold]


def deadline(recent: Sequence[dt.datetime], threshold: int, activated_at: dt.datetime,
             interval_seconds: int, grace_seconds: int, schedule: Schedule | None = None) -> dt.datetime:
    """When the service becomes overdue. ``recent`` is newest first."""
    if schedule is not None:
        latest = max(recent[0], activated_at) if recent else activated_at
        return schedule.fires_after(latest, threshold) + dt.timedelta(seconds=grace_seconds)
    h_k = recent[threshold - 1] if len(recent) >= threshold else activated_at
    h_k = max(h_k, activated_at)
    return h_k + dt.timedelta(seconds=interval_seconds + grace_seconds)


def is_overdue(deadline_at: dt.datetime | None, now: dt.datetime) -> bool:
    return deadline_at is not None and now >= deadline_at
