"""What a heartbeat reports: its status word (and a run id), and which statuses
are failures.

A status is any non-empty word of at most 64 characters, stored upper-case.
``FAILED`` and ``DOWN`` are reported failures: recorded, never counted as a sign
of life. Every other word is a sign of life. This module is the one definition of
that set: the SQL that counts signs of life takes it as a parameter
(``FAILURE_STATUSES_PARAM``).
"""
from __future__ import annotations

from medic.errors import InvalidArgument

MAX_STATUS_LENGTH = 64
MAX_RUN_ID_LENGTH = 255

# Words the job signals (RecordJobSignal) record.
STARTED = "STARTED"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
DOWN = "DOWN"

FAILURE_STATUSES = frozenset({FAILED, DOWN})
# As SQL takes it: ``status <> ALL(%(failure_statuses)s)`` (psycopg2 sends a list as an ARRAY).
FAILURE_STATUSES_PARAM = sorted(FAILURE_STATUSES)


def counts_as_life(status: str) -> bool:
    return status not in FAILURE_STATUSES


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
