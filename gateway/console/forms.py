"""Form fields -> RPC request fields, with a message beside each bad field.

Only the shape is checked here (a number where a number goes, a known choice);
every rule about values is the contract's or the service's, and its
INVALID_ARGUMENT message is put beside the field it names
("alert_interval_seconds must be between 1 and 31536000"), so the console says
exactly what the API says.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from gateway.console import present

SERVICE_FIELDS = ("heartbeat_name", "service_name", "alert_interval_seconds", "threshold",
                  "grace_period_seconds", "team", "priority", "runbook", "notify_mode")
INTEGER_FIELDS = ("alert_interval_seconds", "threshold", "grace_period_seconds")
# A job's settings, on a service's settings form.
JOB_FIELDS = ("schedule", "timezone", "max_duration_seconds", "min_duration_seconds", "failure_tolerance")


@dataclass
class Form:
    """What was typed (to show it again) and the errors, by field."""
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.message

    def error_from_service(self, message: str) -> None:
        """Puts a service's message beside the field it starts with, else above the form."""
        name = message.split(" ", 1)[0].rstrip(":")
        if name in self.values:
            self.errors[name] = message
        else:
            self.message = message


def typed(form: FormData, names: tuple[str, ...]) -> Form:
    return Form(values={name: str(form.get(name, "")) for name in names})


def service_fields(form: Form, *, required: bool) -> dict[str, Any]:
    """RPC fields of a register / update form; shape errors go into ``form``."""
    out: dict[str, Any] = {}
    for name in SERVICE_FIELDS:
        raw = form.values.get(name, "").strip()
        if name in INTEGER_FIELDS:
            if raw == "":
                if required and name == "alert_interval_seconds":
                    form.errors[name] = f"{name} is required"
                continue
            try:
                out[name] = int(raw)
            except ValueError:
                form.errors[name] = f"{name} must be a whole number"
        elif name == "priority":
            if raw:
                if raw not in present.PRIORITIES:
                    form.errors[name] = "priority must be one of p1, p2, p3, p4, p5"
                else:
                    out[name] = present.PRIORITIES[raw]
        elif name == "notify_mode":
            if raw:
                if raw not in present.NOTIFY_MODES:
                    form.errors[name] = "notify_mode must be one of all, until_success"
                else:
                    out[name] = present.NOTIFY_MODES[raw]
        elif name in ("heartbeat_name", "service_name"):
            if raw or required:
                out[name] = raw
        else:
            out[name] = raw
    return out


def job_fields(form: Form) -> dict[str, Any]:
    """UpdateService fields of the job settings; shape errors go into ``form``.
    Every one is sent, so an emptied field clears its setting: no schedule (the
    interval applies), UTC, no duration limit, no failure tolerated."""
    out: dict[str, Any] = {}
    for name in JOB_FIELDS:
        raw = form.values.get(name, "").strip()
        if name in ("schedule", "timezone"):
            out[name] = raw
            continue
        number = integer(raw)
        if number is None:
            form.errors[name] = f"{name} must be a whole number"
        else:
            out[name] = number
    return out


def integer(raw: str, default: int = 0) -> int | None:
    """An optional whole number from a query string or form; None when malformed."""
    raw = (raw or "").strip()
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return None
