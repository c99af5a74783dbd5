"""A service's change history: what the audit log records about a service
change (its settings before and after, and which kind of change it was).

The event is written with ``medic.audit.record`` in the transaction of the
change (``service_store``), so a change cannot commit without it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medic import audit
from medic.db import Row, Tx

SOURCE = "heartbeat"
RESOURCE = "service"

# What a person sets on a service: the audit log's before and after, and what
# a snapshot restores.
SETTINGS = ("heartbeat_name", "service_name", "alert_interval_seconds", "threshold", "grace_period_seconds",
            "team", "team_id", "priority", "runbook", "notify_mode", "active", "muted", "mute_reason", "muted_by",
            "muted_until", "schedule", "timezone", "max_duration_seconds", "min_duration_seconds",
            "failure_tolerance")
# What a mute carries with it: a change of these alone is still a mute or an unmute.
MUTE_DETAILS = {"mute_reason", "muted_by", "muted_until"}
# Shown with the settings, but not a setting: moves with heartbeats and alerts.
STATE = ("state",)


def settings(row: Mapping[str, Any]) -> dict[str, Any]:
    """A service's settings (and state), as the audit log records them."""
    return {name: row.get(name) for name in SETTINGS + STATE}


def action_type(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """The kind of an update, by the settings it changed (the original's
    snapshot action types): one thing alone names it, anything else is an edit."""
    changed = {name for name in SETTINGS if before.get(name) != after.get(name)}
    if "muted" in changed and changed - MUTE_DETAILS == {"muted"}:
        return "mute" if after["muted"] else "unmute"
    if changed == {"active"}:
        return "activate" if after["active"] else "deactivate"
    if changed == {"muted"}:
        return "mute" if after["muted"] else "unmute"
    if changed == {"priority"}:
        return "priority_change"
    if changed and changed <= {"team", "team_id"}:
        return "team_change"
    return "edit"


def event(action: str, service_id: int, before: Row | None, after: Row | None, *,
          bulk_id=None, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``medic.audit.record`` arguments of a service change."""
    return dict(source=SOURCE, action_type=action, resource=RESOURCE, resource_id=service_id,
                service_id=service_id, before=None if before is None else settings(before),
                after=None if after is None else settings(after), bulk_id=bulk_id, details=details)


def record(tx: Tx, action: str, service_id: int, before: Row | None, after: Row | None, *,
           bulk_id=None, details: Mapping[str, Any] | None = None) -> None:
    audit.record(tx, **event(action, service_id, before, after, bulk_id=bulk_id, details=details))
