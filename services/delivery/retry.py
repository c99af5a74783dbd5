"""The retry schedule: when the next attempt of a failed delivery is due.

Pure: it never decides *whether* to retry (the sender classified the failure),
only *when*, and gives up after the last configured delay: a
``medic.retry.RetrySchedule`` of MEDIC_DELIVERY_RETRY_DELAYS, which a receiver's
Retry-After may stretch.
"""
from __future__ import annotations

from collections.abc import Sequence

from medic.retry import RetrySchedule


def next_delay(attempts_made: int, delays: Sequence[float], retry_after: float | None = None,
               retry_after_cap: float = 300.0) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts (>= 1) of this round,
    or None when the schedule is exhausted.

    With delays (1, 5, 30): attempts at 0, +1, +5, +30 s. A receiver's
    Retry-After replaces the scheduled delay when it is longer, capped at
    `retry_after_cap` (never shorter than the schedule).
    """
    delay = RetrySchedule(tuple(delays)).delay(attempts_made) if delays else None
    if delay is None:
        return None
    if retry_after is not None and retry_after > delay:
        delay = max(delay, min(retry_after, retry_after_cap))
    return delay


def parse_retry_after(value: str | None, now_unix: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return seconds if seconds >= 0 else None
    except ValueError:
        pass
    import email.utils
    import time
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now_unix is None else now_unix
    return max(0.0, when.timestamp() - now)


def decide(outcome: str, attempts_made: int, delays: Sequence[float],
           retry_after: float | None = None, retry_after_cap: float = 300.0
           ) -> tuple[str, float | None]:
    """(new status, seconds until the next attempt or None) after one attempt.

    `outcome` is the sender's verdict: success, retryable or permanent.
    """
    if outcome == "success":
        return "success", None
    if outcome == "retryable":
        delay = next_delay(attempts_made, delays, retry_after, retry_after_cap)
        if delay is not None:
            return "retrying", delay
    return "failed", None
