-- Scheduled jobs (heartbeat domain): runs with durations, cron schedules with a
-- time zone, duration limits, consecutive-failure tolerance, run output.

-- A service has an interval (as before) or a cron schedule: a 5-field expression
-- evaluated in `timezone` (IANA). Duration limits apply to its runs.
ALTER TABLE services
    ADD COLUMN schedule             text CHECK (length(schedule) BETWEEN 1 AND 255),
    ADD COLUMN timezone             text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    ADD COLUMN max_duration_seconds integer CHECK (max_duration_seconds >= 1),
    ADD COLUMN min_duration_seconds integer CHECK (min_duration_seconds >= 1),
    -- A reported failure opens an alert only after failure_tolerance + 1 in a row.
    ADD COLUMN failure_tolerance    integer NOT NULL DEFAULT 0 CHECK (failure_tolerance >= 0),
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0);

-- New alert reasons. Issue 22 may alter the same constraint: drop and re-add with
-- the union of every value on main.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_reason_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_reason_check
    CHECK (reason IN ('missed_heartbeats', 'reported_failure', 'run_too_long', 'run_too_fast'));
-- The run an alert is about (a failed, hung or too-fast run), and the first 1 KiB
-- of its output, which the alert's notifications carry.
ALTER TABLE alerts ADD COLUMN job_run_id bigint;
ALTER TABLE alerts ADD COLUMN run_output text;

-- One row per run of a job: started by a STARTED signal, ended by COMPLETED or
-- FAILED (correlated by run_id, or with the newest open run). A run is open
-- while completed_at is NULL (running, or timed_out once past its service's
-- max_duration_seconds); an open run without run_id superseded by a new start
-- is abandoned. An end with no start is a run of unknown duration (started_at
-- and duration_ms NULL).
CREATE TABLE job_runs (
    job_run_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id   bigint NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    run_id       text CHECK (length(run_id) <= 255),
    status       text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'timed_out', 'abandoned')),
    started_at   timestamptz,
    completed_at timestamptz,
    duration_ms  bigint CHECK (duration_ms >= 0),
    -- The output the end signal carried (at most 10 KiB of UTF-8).
    message      text CHECK (octet_length(message) <= 10240),
    -- When an open run becomes too long (started_at + max_duration_seconds); the
    -- monitor finds due runs through job_runs_overdue_idx, then clears it.
    overdue_at   timestamptz
);

-- A service's runs, newest first (ListJobRuns, success rate).
CREATE INDEX job_runs_service_idx ON job_runs (service_id, job_run_id DESC);
-- Open runs of a service, for correlating an end with its start.
CREATE INDEX job_runs_open_idx ON job_runs (service_id, job_run_id DESC) WHERE completed_at IS NULL;
-- Durations of the latest completed runs (stats), read from the index alone.
CREATE INDEX job_runs_durations_idx ON job_runs (service_id, completed_at DESC) INCLUDE (duration_ms)
    WHERE status = 'completed' AND duration_ms IS NOT NULL;
-- The monitor reads only what is due: open runs with a limit, by when they overrun.
CREATE INDEX job_runs_overdue_idx ON job_runs (overdue_at)
    WHERE completed_at IS NULL AND overdue_at IS NOT NULL;
-- Retention: runs end (or, never ended, start) in time order.
CREATE INDEX job_runs_retention_idx ON job_runs ((coalesce(completed_at, started_at)));
