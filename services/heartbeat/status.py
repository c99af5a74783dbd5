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
# A run's output: at most 10 KiB of UTF-8; alerts carry its first 1 KiB.
MAX_MESSAGE_BYTES = 10 * 1024
ALERT_OUTPUT_BYTES = 1024

# Words the job signals (RecordJobSignal) record.
STARTED = "STARTED"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
DOWN = "DOWN"

FAILURE_STATUSES = frozenset({FAILED, DOWN})
# Statuses that make a heartbeat a job signal even without a run id or output.
JOB_STATUSES = frozenset({STARTED, COMPLETED, FAILED})
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


def validate_message(message: str) -> str | None:
    """A run's output: at most 10 KiB of UTF-8 (INVALID_ARGUMENT beyond); empty is none."""
    if not message:
        return None
    if len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise InvalidArgument(f"message must be at most {MAX_MESSAGE_BYTES} bytes of UTF-8 (10 KiB)")
    if "\x00" in message:
        raise InvalidArgument("message must not contain NUL characters")
    return message


def is_job_signal(status: str, run_id: str | None, message: str | None) -> bool:
    """Whether a heartbeat starts or ends a run: a STARTED, COMPLETED or FAILED
    status, a run id or an output makes it one (``run_store``)."""
    return status in JOB_STATUSES or run_id is not None or message is not None


def is_start(status: str) -> bool:
    return status == STARTED


def counts_as_success(status: str) -> bool:
    """A success resets the count of failures in a row: a sign of life other than a start."""
    return status not in FAILURE_STATUSES and status != STARTED


def alert_output(message: str | None) -> str | None:
    """The first 1 KiB of a run's output, cut at a character boundary."""
    if not message:
        return None
    return message.encode("utf-8")[:ALERT_OUTPUT_BYTES].decode("utf-8", "ignore")
