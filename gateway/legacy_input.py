"""How the legacy routes read what the original Medic's clients send.

The original API was lenient in places: it stored a priority of "high", an
alert interval of 0, ``muted: 2`` or an empty status without complaint.
Old clients rely on that, so the legacy routes accept the same values and
answer with the original's status codes. Medic's model cannot hold some of
them; such a value is normalised in one way only:

    a value of the type the original accepted, which Medic's model cannot
    hold, becomes the nearest value the model can hold.

So a number below its minimum becomes the minimum, a 0/1 flag other than 0
is true, an unknown priority is the default p3 and a blank status is "UP"
(a sign of life, as the original counted it). A value of the wrong type, or
an integer beyond what the field can hold, is refused with 400 and a message
naming the field the client sent. What a field can hold (``RANGES``) comes
from the contract field it fills (its ``limits`` option, read through
``medic.contracts.field_limits``), so the legacy routes, the services and the
OpenAPI document share one definition; below the contract's minimum, the
fields the original was lenient about go down to what the original could
store (a PostgreSQL ``integer``), and are normalised.

``/v2`` and gRPC stay strict; ``COMPATIBILITY`` lists every difference from
the original on purpose (it is rendered into docs/api.md).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from medic import contracts, enums
from medic.v1 import common_pb2, heartbeat_pb2
from gateway.http import HttpError, is_int, is_number

INT64_MAX = 2**63 - 1

PRIORITIES = enums.PRIORITY.numbers
DEFAULT_PRIORITY = common_pb2.PRIORITY_P3
BLANK_STATUS = "UP"
MAX_LISTED_HEARTBEATS = 250

# What a legacy body field may hold: a check and the words for the error.
KINDS = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "integer": (is_int, "an integer"),
    "number": (is_number, "a number"),
    # The original's 0/1 integers; 0 is false, any other integer true.
    "flag": (lambda v: isinstance(v, bool) or is_int(v), "an integer (0 or 1)"),
}
# The original kept its integers (alert_interval, threshold, the 0/1 flags) in
# PostgreSQL `integer` columns: it took any value in that range, and failed beyond it.
ORIGINAL_INTEGER = (-(2**31), 2**31 - 1)
SECONDS_PER_MINUTE = 60


def _contract_range(name: str) -> tuple[int, int]:
    """The range of a contract field, as both registration and update accept it."""
    ranges = [contracts.field_limits(message.DESCRIPTOR.fields_by_name[name])
              for message in (heartbeat_pb2.RegisterServiceRequest, heartbeat_pb2.UpdateServiceRequest)]
    return max(r.minimum for r in ranges), min(r.maximum for r in ranges)


_INTERVAL_SECONDS = _contract_range("alert_interval_seconds")
# The job fields of POST /service and POST /service/<name>: newer fields, checked strictly.
JOB_FIELDS = {"schedule": "string", "timezone": "string", "max_duration_seconds": "integer",
              "min_duration_seconds": "integer", "failure_tolerance": "integer"}
# Legacy body field -> the integers (or numbers) it accepts. Fields normalised below
# their minimum take down to the original's least integer; the newer fields
# (alert_interval_seconds, grace_period_seconds, team_id) are checked as their contract says.
RANGES: dict[str, tuple[int, int]] = {
    "alert_interval": (ORIGINAL_INTEGER[0], _INTERVAL_SECONDS[1] // SECONDS_PER_MINUTE),  # minutes
    "threshold": (ORIGINAL_INTEGER[0], _contract_range("threshold")[1]),
    "muted": ORIGINAL_INTEGER, "active": ORIGINAL_INTEGER, "down": ORIGINAL_INTEGER,
    "alert_interval_seconds": _INTERVAL_SECONDS,
    "grace_period_seconds": _contract_range("grace_period_seconds"),
    "team_id": _contract_range("team_id"),
    "max_duration_seconds": _contract_range("max_duration_seconds"),
    "min_duration_seconds": _contract_range("min_duration_seconds"),
    "failure_tolerance": _contract_range("failure_tolerance"),
}
NORMALISED_BELOW = {"alert_interval", "threshold"}  # below their minimum: the minimum
UNITS = {"alert_interval": " minutes"}
# A 0/1 query parameter as the original read it: any integer, or true/false (any case);
# empty means not given. One expression for the server and the OpenAPI document.
QUERY_FLAG_PATTERN = "^ *([+-]?[0-9]+|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])? *$"


def invalid(generic: str | None, detail: str) -> HttpError:
    """400 naming the field; after the original's message where it had a generic one."""
    if not generic:
        return HttpError(400, detail)
    return HttpError(400, f"{generic}{' ' if generic.endswith('.') else '. '}{detail}")


def check_body(data: Mapping[str, Any], schema: Mapping[str, str], *, required: tuple[str, ...] = (),
               generic: str | None = None) -> None:
    """400 for unknown fields, missing required ones (``null`` counts as absent), wrong
    types and integers beyond their field's range; each message names the field."""
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise invalid(generic, f"Unknown field(s): {', '.join(unknown)}.")
    for name in required:
        if data.get(name) is None:
            raise invalid(generic, f"Field `{name}` is missing.")
    for name, kind in schema.items():
        value = data.get(name)
        if value is None:
            continue
        check, words = KINDS[kind]
        if not check(value):
            raise invalid(generic, f"Field `{name}` must be {words}.")
        if name in RANGES and not isinstance(value, bool):
            low, high = RANGES[name]
            unit = UNITS.get(name, "")
            if value > high and name in NORMALISED_BELOW:
                raise invalid(generic, f"Field `{name}` must be at most {high}{unit}.")
            if not low <= value <= high:
                raise invalid(generic, f"Field `{name}` must be between {low} and {high}{unit}.")


def flag(value: bool | int) -> bool:
    return value != 0


def priority(value: str) -> int:
    return PRIORITIES.get(value.strip().lower(), DEFAULT_PRIORITY)


def threshold(value: int) -> int:
    return max(value, 1)


def status(value: str) -> str:
    return value if value.strip() else BLANK_STATUS


def interval_seconds(data: Mapping[str, Any]) -> int | None:
    """``alert_interval_seconds`` (as sent) wins over the original's ``alert_interval``
    in minutes, which becomes whole seconds, at least the contract's minimum (1 s).
    ``check_body`` has checked both against ``RANGES``."""
    if data.get("alert_interval_seconds") is not None:
        return data["alert_interval_seconds"]
    minutes = data.get("alert_interval")
    if minutes is None:
        return None
    return max(round(minutes * SECONDS_PER_MINUTE), _INTERVAL_SECONDS[0])


def query_flag(request: Request, name: str) -> bool | None:
    """A 0/1 query parameter as the original read it (any integer; 0 is false), or
    true/false; 400 with the original's message otherwise (``QUERY_FLAG_PATTERN``)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if _QUERY_FLAG.fullmatch(raw) is None:
        raise HttpError(400, f"Invalid '{name}' parameter")
    value = raw.strip().lower()
    if value == "":
        return None
    if value in ("true", "false"):
        return value == "true"
    return int(value) != 0


_QUERY_FLAG = re.compile(QUERY_FLAG_PATTERN)


def max_count(request: Request) -> int:
    """``maxCount``: 0 lists nothing; absent, not a number or negative means 250."""
    raw = request.query_params.get("maxCount")
    try:
        value = int(raw) if raw else MAX_LISTED_HEARTBEATS
    except ValueError:
        value = MAX_LISTED_HEARTBEATS
    return MAX_LISTED_HEARTBEATS if value < 0 else min(value, MAX_LISTED_HEARTBEATS)


# What stays different from the original Medic on purpose, with the reason; rendered
# into docs/api.md by medic_cli.apidocs.
COMPATIBILITY: list[tuple[str, str, str]] = [
    ("API keys",
     "No authentication.",
     "Every route but health, metrics and docs needs a key: `Authorization: Bearer mdk_...`, or "
     "HTTP Basic credentials carrying the key as the user name or the password, so a client whose "
     "base URL can hold `https://medic:KEY@host` needs no code change. See *Legacy clients and keys*."),
    ("Heartbeat names",
     "`POST /service` compared names exactly, the other routes case-insensitively.",
     "Names are unique and matched case-insensitively everywhere: `POST /service` with `Web` "
     "when `web` exists answers 200 \"Heartbeat is already registered.\""),
    ("`FAILED` and `DOWN` heartbeats",
     "Stored like any other status.",
     "A `FAILED` or `DOWN` status opens an alert at once (reason `reported_failure`; with a "
     "service's `failure_tolerance` N, at the N+1-th in a row) and reminds; the next other status "
     "but `STARTED` resolves it. A `FAILED` also ends the open job run as failed."),
    ("Values Medic cannot hold",
     "Stored as sent: priority `high`, `alert_interval` 0, `threshold` 0, `muted`/`active`/`down` 2, "
     "status `\"\"`.",
     "Accepted with the original's status code and stored as the nearest value Medic can hold: an "
     "unknown priority is `p3`; `alert_interval` below one second is 1 s; `threshold` below 1 is 1; "
     "a flag other than 0 is 1; a blank status is `UP`. `/v2` and gRPC refuse such values."),
    ("Values beyond Medic's limits",
     "Stored when they fit a PostgreSQL `integer` (e.g. `threshold` 5000, `alert_interval` of ten years).",
     f"400 naming the field sent: `alert_interval` at most {RANGES['alert_interval'][1]:,} minutes, "
     f"`threshold` at most {RANGES['threshold'][1]:,}, `alert_interval_seconds` at most "
     f"{RANGES['alert_interval_seconds'][1]:,} and `grace_period_seconds` at most "
     f"{RANGES['grace_period_seconds'][1]:,} seconds, flags within the original's integer range: "
     "the limits `/v2` and gRPC enforce, read from the same contract fields."),
    ("`active` query parameter",
     "Any integer; `active=2` matched nothing.",
     "Any integer, 0 meaning inactive and any other active (`true`/`false` too); not an integer: 400 "
     "\"Invalid 'active' parameter\", as before."),
    ("Wrong types and huge integers",
     "400 with a generic message (or 500 for an integer the database could not store).",
     "400 with the original's message followed by the field at fault, e.g. \"Field `alert_interval` "
     "must be an integer.\"; an integer beyond its field's range is a 400 too, and a job-signal "
     "service id beyond 2^63-1 a 404."),
    ("Values Medic refuses",
     "Stored as sent: a blank `heartbeat_name` or `service_name` at registration, a status over 64 "
     "characters, a `run_id` over 255.",
     "400 naming the field."),
    ("Bodies",
     "Any size; a body that was not a JSON object failed with 500.",
     "At most 64 KiB (413); not a JSON object: 400. The job-signal routes ignore a body they cannot "
     "use, as the original did."),
    ("Times",
     "Strings as its database rendered them, in America/Chicago time (`2024-05-01 09:30:00 CDT`).",
     "RFC 3339 in UTC, e.g. `2026-11-27T08:00:00Z`."),
    ("`GET /alerts` and `GET /heartbeat` paging",
     "`GET /alerts?active=` listed every matching alert in one answer, `GET /alerts` the latest 100; "
     "`GET /heartbeat` at most `maxCount` (250).",
     "One page each: `GET /alerts?active=` the newest 1,000 matching alerts, `GET /alerts` the latest "
     "100 (`limit` sets the page size, at most 1,000), `GET /heartbeat` `maxCount` as before. When more "
     "follow, the answer has a `Link: <...&offset=N>; rel=\"next\"` header; `offset` passes over "
     "that many. A client that ignores the header sees the first page only."),
    ("Newer fields",
     "-",
     "`POST /service` and `POST /service/<name>` also take `alert_interval_seconds`, "
     "`grace_period_seconds`, `notify_mode`, `team_id` and the job fields `schedule`, `timezone`, "
     "`max_duration_seconds`, `min_duration_seconds` and `failure_tolerance` (checked strictly); "
     "with a `schedule`, `alert_interval` may be left out (the schedule sets the deadline; the shortest "
     "gap between its next times paces the reminders); "
     "listings carry more fields (`state`, `deadline_at`, ...), and `POST /service` returns the service "
     "it registered. `POST /heartbeat` also takes `run_id` and `message` (a run's output, at most 10 KiB: "
     "413 beyond), and the job-signal routes take `message` too."),
    ("`external_reference_id` of an alert",
     "`medic-<heartbeat_name>`, the PagerDuty `dedup_key`.",
     "`medic-alert-<alert_id>`, the `dedup_key` PagerDuty is sent for that alert's trigger, reminders "
     "and resolve: one per alert, so a late resolve of an earlier alert cannot close a later incident."),
    ("Server errors",
     "500 with a stack trace in the log for bad input.",
     "Bad input is always a 4xx with the envelope; 503 when a Medic service or the database is down."),
]
