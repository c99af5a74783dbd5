"""Retry schedules: when the next attempt after a failed one is due.

Pure, and of one kind for every retry in Medic: a schedule never decides
*whether* to retry (whoever made the attempt classified its failure), only
*when*, and when to give up.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrySchedule:
    """``delays[n - 1]``: the pause after the n-th failed attempt. Past the last
    delay, a schedule that retries ``forever`` keeps pausing the last delay;
    any other gives up."""
    delays: tuple[float, ...]
    forever: bool = False

    def __post_init__(self) -> None:
        if not self.delays or any(delay < 0 for delay in self.delays):
            raise ValueError("a retry schedule needs at least one delay, none negative")

    @classmethod
    def doubling(cls, first: float, cap: float) -> "RetrySchedule":
        """``first``, twice that, and so on up to ``cap``, then ``cap`` forever."""
        delays = []
        delay = first
        while delay < cap:
            delays.append(delay)
            delay *= 2
        return cls(tuple(delays) + (cap,), forever=True)

    def delay(self, attempts_made: int) -> float | None:
        """Seconds until the next attempt after ``attempts_made`` (>= 1) failed
        ones, or None when the schedule has given up."""
        if attempts_made < 1:
            return None
        if attempts_made > len(self.delays):
            return float(self.delays[-1]) if self.forever else None
        return float(self.delays[attempts_made - 1])
