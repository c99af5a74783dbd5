"""Job runs (``job_runs``): correlating start and end signals into runs, and
reading them back (the runs list, the duration statistics).

A STARTED signal opens a run. A COMPLETED or FAILED signal (any heartbeat that
is a job signal and not a start, ``status.is_job_signal``) ends the open run
with the same ``run_id`` or, without one, the service's newest open run; with
no open run to end it is recorded as a run of unknown duration. A start with
the ``run_id`` of an open run changes nothing (a retried start); a start without
``run_id`` abandons the open runs without one (the job never reported their end).
The monitor marks open runs past their service's ``max_duration_seconds``
``timed_out`` (``claim_overrun``). Everything here runs inside the caller's
transaction, which holds the service's row lock.
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import NamedTuple

from medic.db import Database, Row, Tx


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"


RUN_COLUMNS = "job_run_id, service_id, run_id, status, started_at, completed_at, duration_ms, message"

FIND_OPEN_BY_RUN_ID = f"""
    SELECT {RUN_COLUMNS} FROM job_runs
    WHERE service_id = %(service_id)s AND completed_at IS NULL AND run_id = %(run_id)s
    ORDER BY job_run_id DESC LIMIT 1
"""
FIND_NEWEST_OPEN = f"""
    SELECT {RUN_COLUMNS} FROM job_runs
    WHERE service_id = %(service_id)s AND completed_at IS NULL
    ORDER BY job_run_id DESC LIMIT 1
"""
# A start without run_id supersedes the open runs without one: a run that had
# timed out stays timed_out, the others are abandoned.
ABANDON_OPEN = f"""
    UPDATE job_runs
    SET status = CASE WHEN status = '{RunStatus.TIMED_OUT}' THEN status ELSE '{RunStatus.ABANDONED}' END,
        completed_at = %(now)s, overdue_at = NULL
    WHERE service_id = %(service_id)s AND completed_at IS NULL AND run_id IS NULL
"""
INSERT_START = f"""
    INSERT INTO job_runs (service_id, run_id, status, started_at, overdue_at)
    VALUES (%(service_id)s, %(run_id)s, '{RunStatus.RUNNING}', %(now)s,
            %(now)s + make_interval(secs => %(max_duration)s))
    RETURNING {RUN_COLUMNS}
"""
END_RUN = f"""
    UPDATE job_runs
    SET status = %(status)s, completed_at = %(now)s, overdue_at = NULL, message = %(message)s,
        duration_ms = CASE WHEN started_at IS NULL THEN NULL
                           ELSE greatest(0, round(extract(epoch FROM %(now)s - started_at) * 1000))::bigint END
    WHERE job_run_id = %(job_run_id)s
    RETURNING {RUN_COLUMNS}
"""
INSERT_END = f"""
    INSERT INTO job_runs (service_id, run_id, status, completed_at, message)
    VALUES (%(service_id)s, %(run_id)s, %(status)s, %(now)s, %(message)s)
    RETURNING {RUN_COLUMNS}
"""

LIST_RUNS = f"""
    SELECT {RUN_COLUMNS} FROM job_runs WHERE service_id = %(service_id)s
    ORDER BY job_run_id DESC LIMIT %(limit)s OFFSET %(offset)s
"""

# Statistics over the last 100 completed runs of known duration, read from
# job_runs_durations_idx alone (percentile_cont interpolates linearly, as
# numpy.percentile does by default), and the success rate of the last 100 ended runs.
STATS_WINDOW = 100
MIN_RUNS_FOR_STATS = 5
JOB_STATS = f"""
    WITH latest AS (
        SELECT duration_ms FROM job_runs
        WHERE service_id = %(service_id)s AND status = '{RunStatus.COMPLETED}' AND duration_ms IS NOT NULL
        ORDER BY completed_at DESC LIMIT {STATS_WINDOW}
    ), ended AS (
        SELECT status FROM job_runs
        WHERE service_id = %(service_id)s AND completed_at IS NOT NULL
        ORDER BY job_run_id DESC LIMIT {STATS_WINDOW}
    )
    SELECT (SELECT count(*) FROM latest)::integer AS run_count,
           (SELECT avg(duration_ms)::float8 FROM latest) AS avg_duration_ms,
           (SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) FROM latest)
               AS percentiles,
           (SELECT min(duration_ms) FROM latest) AS min_duration_ms,
           (SELECT max(duration_ms) FROM latest) AS max_duration_ms,
           (SELECT count(*) FROM ended)::integer AS ended_runs,
           (SELECT count(*) FILTER (WHERE status = '{RunStatus.COMPLETED}') FROM ended)::integer AS succeeded
"""

# The monitor: open runs past their limit, through job_runs_overdue_idx, with
# their service (locked too, skip-locked, so the monitor never waits for an
# ingest that holds the service and then the run).
CLAIM_OVERRUN = f"""
    SELECT now() AS now, r.job_run_id, r.run_id, r.service_id, s.state, s.muted, s.active,
           s.alert_interval_seconds, s.team, s.heartbeat_name
    FROM job_runs r JOIN services s ON s.service_id = r.service_id
    WHERE r.completed_at IS NULL AND r.overdue_at IS NOT NULL AND r.overdue_at <= now()
    ORDER BY r.overdue_at
    LIMIT %(batch)s
    FOR NO KEY UPDATE OF r, s SKIP LOCKED
"""
MARK_TIMED_OUT = f"""
    UPDATE job_runs SET status = '{RunStatus.TIMED_OUT}', overdue_at = NULL WHERE job_run_id = %(job_run_id)s
"""

DELETE_EXPIRED_RUNS = """
    DELETE FROM job_runs
    WHERE job_run_id = ANY(ARRAY(
        SELECT job_run_id FROM job_runs
        WHERE coalesce(completed_at, started_at) < now() - make_interval(days => %(days)s)
        ORDER BY coalesce(completed_at, started_at)
        LIMIT %(batch)s
        FOR UPDATE SKIP LOCKED))
"""


class Ended(NamedTuple):
    run: Row
    overran: bool  # the run had timed out before it ended


def start_run(tx: Tx, service_id: int, run_id: str | None, now: dt.datetime,
              max_duration_seconds: int | None) -> Row:
    if run_id is not None:
        existing = tx.one(FIND_OPEN_BY_RUN_ID, {"service_id": service_id, "run_id": run_id})
        if existing is not None:
            return existing  # a retried start
    else:
        tx.execute(ABANDON_OPEN, {"service_id": service_id, "now": now})
    return tx.one(INSERT_START, {"service_id": service_id, "run_id": run_id, "now": now,
                                 "max_duration": max_duration_seconds})


def end_run(tx: Tx, service_id: int, run_id: str | None, failed: bool, message: str | None,
            now: dt.datetime) -> Ended:
    status = RunStatus.FAILED if failed else RunStatus.COMPLETED
    find = FIND_OPEN_BY_RUN_ID if run_id is not None else FIND_NEWEST_OPEN
    run = tx.one(find, {"service_id": service_id, "run_id": run_id})
    params = {"service_id": service_id, "run_id": run_id, "status": status, "message": message, "now": now}
    if run is None:
        return Ended(tx.one(INSERT_END, params), overran=False)
    return Ended(tx.one(END_RUN, dict(params, job_run_id=run["job_run_id"])),
                 overran=run["status"] == RunStatus.TIMED_OUT)


class RunStore:
    def __init__(self, db: Database):
        self.db = db

    def list_runs(self, service_id: int, limit: int, offset: int) -> list[Row]:
        return self.db.all(LIST_RUNS, {"service_id": service_id, "limit": limit, "offset": offset})

    def stats(self, service_id: int) -> Row:
        return self.db.one(JOB_STATS, {"service_id": service_id})

    def delete_expired_batch(self, days: int, batch: int) -> int:
        with self.db.transaction() as tx:
            return tx.execute(DELETE_EXPIRED_RUNS, {"days": days, "batch": batch})


def claim_overrun(tx: Tx, batch: int) -> list[Row]:
    return tx.all(CLAIM_OVERRUN, {"batch": batch})


def mark_timed_out(tx: Tx, job_run_id: int) -> None:
    tx.execute(MARK_TIMED_OUT, {"job_run_id": job_run_id})
