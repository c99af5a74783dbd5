"""Which playbook an alert starts: the trigger rule.

A playbook's trigger is a glob (``fnmatch``: ``*``, ``?``, ``[seq]``) matched
case-insensitively against the alerting service's heartbeat name or service
name, and a number of consecutive failures: the alert's TRIGGER counts 1 and
each REMINDER one more. At each event the matching playbooks whose threshold
is reached are ordered most specific first (higher threshold, then lower id),
and the first that has not yet run for this alert starts. So a playbook runs at
most once per alert, and a playbook with a higher threshold takes over once the
alert has failed that often.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerRule:
    playbook_id: int
    service_pattern: str
    consecutive_failures: int


def matches(pattern: str, *names: str) -> bool:
    return any(name and fnmatch.fnmatchcase(name.lower(), pattern.lower()) for name in names)


def choose(rules: Iterable[TriggerRule], names: tuple[str, ...], failures: int,
           already_started: set[int]) -> int | None:
    """The playbook an alert with ``failures`` consecutive failures starts now, if any."""
    eligible = sorted((r for r in rules if r.consecutive_failures <= failures and matches(r.service_pattern, *names)),
                      key=lambda r: (-r.consecutive_failures, r.playbook_id))
    for rule in eligible:
        if rule.playbook_id in already_started:
            return None  # the most specific match already ran for this alert
        return rule.playbook_id
    return None
