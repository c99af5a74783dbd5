"""Scheduled jobs over real gRPC against a real PostgreSQL (with the monitor
running): runs correlated from start and end signals, duration limits, failure
tolerance, run output and the statistics."""
from __future__ import annotations

import datetime as dt
import random
import time

import grpc
import numpy
import pytest

from medic.v1 import heartbeat_pb2 as pb

START, COMPLETE, FAIL = pb.JOB_SIGNAL_START, pb.JOB_SIGNAL_COMPLETE, pb.JOB_SIGNAL_FAIL


def register(stub, name="nightly", interval=3600, **fields) -> pb.Service:
    return stub.RegisterService(pb.RegisterServiceRequest(
        heartbeat_name=name, service_name="jobs", alert_interval_seconds=interval, **fields)).service


def signal(stub, service: pb.Service, which, run_id="", message=""):
    return stub.RecordJobSignal(pb.RecordJobSignalRequest(service_id=service.service_id, signal=which,
                                                          run_id=run_id, message=message))


def runs(stub, service: pb.Service) -> list[pb.JobRun]:
    return list(stub.ListJobRuns(pb.ListJobRunsRequest(service_id=service.service_id, limit=100)).runs)


def active_alert(stub, service: pb.Service) -> pb.Alert | None:
    found = [a for a in stub.ListAlerts(pb.ListAlertsRequest(active=True)).alerts
             if a.service_id == service.service_id]
    return found[0] if found else None


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_runs_are_correlated_by_run_id_and_else_with_the_newest_open_run(heartbeats):
    job = register(heartbeats)
    signal(heartbeats, job, START, "a")
    signal(heartbeats, job, START, "b")
    time.sleep(0.05)
    signal(heartbeats, job, COMPLETE, "a", message="exit 0")  # ends a, though b started later
    signal(heartbeats, job, FAIL)                              # no run id: the newest open run, b
    signal(heartbeats, job, START)
    signal(heartbeats, job, START)                             # abandons the open run without run id
    signal(heartbeats, job, COMPLETE)
    signal(heartbeats, job, COMPLETE, "never-started")         # a run of unknown duration

    listed = runs(heartbeats, job)
    got = [(r.run_id, pb.RunStatus.Name(r.status), r.HasField("duration_ms"), r.HasField("started_at"),
            r.HasField("completed_at"), r.message) for r in reversed(listed)]
    assert got == [("a", "RUN_STATUS_COMPLETED", True, True, True, "exit 0"),
                   ("b", "RUN_STATUS_FAILED", True, True, True, ""),
                   ("", "RUN_STATUS_ABANDONED", False, True, True, ""),
                   ("", "RUN_STATUS_COMPLETED", True, True, True, ""),
                   ("never-started", "RUN_STATUS_COMPLETED", False, False, True, "")]
    a = listed[-1]
    assert a.duration_ms >= 50
    assert a.duration_ms == round((a.completed_at.ToDatetime() - a.started_at.ToDatetime()).total_seconds() * 1000)


def test_a_retried_start_with_the_same_run_id_opens_no_second_run(heartbeats):
    job = register(heartbeats)
    signal(heartbeats, job, START, "r1")
    signal(heartbeats, job, START, "r1")
    assert [(r.run_id, r.status) for r in runs(heartbeats, job)] == [("r1", pb.RUN_STATUS_RUNNING)]


def test_heartbeats_with_a_status_and_run_id_make_runs_too(heartbeats):
    job = register(heartbeats)
    heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="nightly", status="STARTED",
                                                         run_id="h1"))
    heartbeats.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=[
        pb.RecordHeartbeatRequest(heartbeat_name="nightly", status="UP"),  # a plain heartbeat: no run
        pb.RecordHeartbeatRequest(heartbeat_name="NIGHTLY", status="completed", run_id="h1",
                                  message="42 rows")]))
    [run] = runs(heartbeats, job)
    assert (run.run_id, run.status, run.message) == ("h1", pb.RUN_STATUS_COMPLETED, "42 rows")


def test_a_hung_run_alerts_run_too_long_within_a_second_and_resolves_when_it_completes(heartbeats):
    job = register(heartbeats, max_duration_seconds=2)
    signal(heartbeats, job, START, "hung")
    [run] = runs(heartbeats, job)
    started = run.started_at.ToDatetime()
    deadline = time.monotonic() + 10
    while (alert := active_alert(heartbeats, job)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alert is not None and alert.reason == pb.ALERT_REASON_RUN_TOO_LONG
    late = (alert.opened_at.ToDatetime() - started).total_seconds() - 2
    assert 0 <= late <= 1, late
    [run] = runs(heartbeats, job)
    assert run.status == pb.RUN_STATUS_TIMED_OUT and not run.HasField("completed_at")

    signal(heartbeats, job, COMPLETE, "hung")

    assert active_alert(heartbeats, job) is None
    [run] = runs(heartbeats, job)
    assert run.status == pb.RUN_STATUS_COMPLETED and run.duration_ms >= 2000
    service = heartbeats.GetService(pb.GetServiceRequest(service_id=job.service_id)).service
    assert service.state == pb.SERVICE_STATE_UP
    reasons = [t.reason for t in heartbeats.ListServiceTransitions(
        pb.ListServiceTransitionsRequest(service_id=job.service_id)).transitions]
    assert reasons[:2] == ["run_ended", "run_too_long"]


def test_a_hung_run_that_fails_closes_run_too_long_and_opens_reported_failure(heartbeats):
    job = register(heartbeats, max_duration_seconds=1)
    signal(heartbeats, job, START)
    deadline = time.monotonic() + 10
    while active_alert(heartbeats, job) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    signal(heartbeats, job, FAIL, message="killed")
    alert = active_alert(heartbeats, job)
    assert alert is not None and alert.reason == pb.ALERT_REASON_REPORTED_FAILURE


def test_a_run_faster_than_its_minimum_alerts_run_too_fast(heartbeats):
    job = register(heartbeats, min_duration_seconds=60)
    signal(heartbeats, job, START, "quick")
    signal(heartbeats, job, COMPLETE, "quick")
    alert = active_alert(heartbeats, job)
    assert alert is not None and alert.reason == pb.ALERT_REASON_RUN_TOO_FAST
    # The next start resolves nothing; only a success does (a heartbeat of a run of unknown
    # duration is not too fast).
    signal(heartbeats, job, START, "next")
    assert active_alert(heartbeats, job) is not None
    signal(heartbeats, job, COMPLETE, "unknown")
    assert active_alert(heartbeats, job) is None


def test_failure_tolerance_two_alerts_on_the_third_failure_in_a_row(heartbeats):
    job = register(heartbeats, failure_tolerance=2)
    for _ in range(2):
        signal(heartbeats, job, START)
        signal(heartbeats, job, FAIL)
    assert active_alert(heartbeats, job) is None
    assert heartbeats.GetService(pb.GetServiceRequest(service_id=job.service_id)).service.consecutive_failures == 2

    signal(heartbeats, job, START)
    signal(heartbeats, job, COMPLETE)  # a success in between resets the count
    for _ in range(2):
        signal(heartbeats, job, FAIL)
    assert active_alert(heartbeats, job) is None

    signal(heartbeats, job, FAIL)
    alert = active_alert(heartbeats, job)
    assert alert is not None and alert.reason == pb.ALERT_REASON_REPORTED_FAILURE


def test_plain_failed_heartbeats_count_against_the_tolerance_too(heartbeats):
    job = register(heartbeats, failure_tolerance=1)
    heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="nightly", status="DOWN"))
    assert active_alert(heartbeats, job) is None
    heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="nightly", status="DOWN"))
    assert active_alert(heartbeats, job) is not None


def insert_runs(db, service_id: int, durations: list[int | None], status="completed") -> None:
    """Runs ended a second apart, oldest first (as a year of nightly runs would leave them)."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with db.transaction() as tx:
        for n, duration in enumerate(durations):
            ended = base + dt.timedelta(seconds=n)
            tx.execute("INSERT INTO job_runs (service_id, status, started_at, completed_at, duration_ms)"
                       " VALUES (%s, %s, %s, %s, %s)",
                       (service_id, status, ended - dt.timedelta(milliseconds=duration or 0), ended, duration))


def test_stats_equal_numpys_percentiles_over_the_last_100_completed_runs(heartbeats, db):
    job = register(heartbeats)
    rng = random.Random(21)
    durations = [rng.randint(1, 600_000) for _ in range(130)]
    insert_runs(db, job.service_id, durations)
    insert_runs(db, job.service_id, [5] * 3, status="failed")  # the latest ended runs: 3 failures

    stats = heartbeats.GetJobStats(pb.GetJobStatsRequest(service_id=job.service_id))

    last = numpy.array(durations[-100:])
    assert stats.run_count == 100
    assert stats.p50_duration_ms == pytest.approx(numpy.percentile(last, 50), abs=1e-6)
    assert stats.p95_duration_ms == pytest.approx(numpy.percentile(last, 95), abs=1e-6)
    assert stats.p99_duration_ms == pytest.approx(numpy.percentile(last, 99), abs=1e-6)
    assert stats.avg_duration_ms == round(float(last.mean()), 2)
    assert (stats.min_duration_ms, stats.max_duration_ms) == (last.min(), last.max())
    assert stats.ended_runs == 100 and stats.success_rate == pytest.approx(0.97)


def test_stats_have_no_durations_below_five_runs(heartbeats, db):
    job = register(heartbeats)
    insert_runs(db, job.service_id, [100, 200, 300, 400])
    insert_runs(db, job.service_id, [None])  # unknown duration: not counted
    stats = heartbeats.GetJobStats(pb.GetJobStatsRequest(heartbeat_name="nightly"))
    assert stats.run_count == 4
    assert not any(stats.HasField(f) for f in ("avg_duration_ms", "p50_duration_ms", "p95_duration_ms",
                                               "p99_duration_ms", "min_duration_ms", "max_duration_ms"))
    assert stats.success_rate == 1.0 and stats.ended_runs == 5


def test_stats_and_runs_of_an_unknown_service_are_not_found(heartbeats):
    with pytest.raises(grpc.RpcError) as info:
        heartbeats.GetJobStats(pb.GetJobStatsRequest(service_id=424242))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "not found" in info.value.details()
    assert code_of(lambda: heartbeats.ListJobRuns(pb.ListJobRunsRequest(heartbeat_name="nope"))) == \
        grpc.StatusCode.NOT_FOUND


def test_a_message_of_10_kib_is_stored_and_one_byte_more_is_refused(heartbeats):
    job = register(heartbeats)
    signal(heartbeats, job, START)
    too_long = "é" * 5120 + "x"  # 10,241 bytes of UTF-8
    for call in (lambda: signal(heartbeats, job, FAIL, message=too_long),
                 lambda: heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(
                     heartbeat_name="nightly", status="FAILED", message=too_long))):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "message" in info.value.details()
    [run] = runs(heartbeats, job)
    assert run.status == pb.RUN_STATUS_RUNNING  # nothing was recorded
    signal(heartbeats, job, FAIL, message="é" * 5120)
    [run] = runs(heartbeats, job)
    assert run.status == pb.RUN_STATUS_FAILED and run.message == "é" * 5120


def test_runs_page_newest_first(heartbeats):
    job = register(heartbeats)
    for n in range(5):
        signal(heartbeats, job, COMPLETE, f"r{n}")
    page = heartbeats.ListJobRuns(pb.ListJobRunsRequest(service_id=job.service_id, limit=2, offset=2))
    assert [r.run_id for r in page.runs] == ["r2", "r1"] and page.has_more
    last = heartbeats.ListJobRuns(pb.ListJobRunsRequest(service_id=job.service_id, limit=2, offset=4))
    assert [r.run_id for r in last.runs] == ["r0"] and not last.has_more


def test_job_fields_are_set_at_registration_and_by_update(heartbeats):
    job = register(heartbeats, schedule="30 9 * * 1-5", timezone="Europe/Berlin", max_duration_seconds=600,
                   min_duration_seconds=5, failure_tolerance=2)
    assert (job.schedule, job.timezone, job.max_duration_seconds, job.min_duration_seconds,
            job.failure_tolerance) == ("30 9 * * 1-5", "Europe/Berlin", 600, 5, 2)
    updated = heartbeats.UpdateService(pb.UpdateServiceRequest(
        service_id=job.service_id, schedule="", max_duration_seconds=0, failure_tolerance=0)).service
    assert (updated.schedule, updated.max_duration_seconds, updated.min_duration_seconds,
            updated.failure_tolerance) == ("", 0, 5, 0)
    plain = register(heartbeats, "plain")
    assert (plain.schedule, plain.timezone, plain.failure_tolerance) == ("", "UTC", 0)


@pytest.mark.parametrize("fields, words", [
    ({"schedule": "* * * *"}, "5"),
    ({"schedule": "61 * * * *"}, "not a valid cron expression"),
    ({"schedule": "0 0 30 2 *"}, "not a valid cron expression"),
    ({"timezone": "Mars/Olympus"}, "not a known IANA time zone"),
    ({"min_duration_seconds": 60, "max_duration_seconds": 30}, "min_duration_seconds"),
])
def test_bad_job_fields_are_refused_saying_what_is_wrong(heartbeats, fields, words):
    with pytest.raises(grpc.RpcError) as info:
        register(heartbeats, "bad", **fields)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in info.value.details()


def test_a_failed_runs_alert_keeps_the_first_kib_of_its_output(heartbeats, db):
    job = register(heartbeats)
    output = "ü" * 600 + "the rest"  # 1,208 bytes: the cut falls inside a two-byte character
    signal(heartbeats, job, START, "r1")
    signal(heartbeats, job, FAIL, "r1", message=output)
    alert = db.one("SELECT run_output, job_run_id FROM alerts WHERE service_id = %s AND active", (job.service_id,))
    assert alert["run_output"] == "ü" * 512  # 1,024 bytes, cut at a character boundary
    [run] = runs(heartbeats, job)
    assert alert["job_run_id"] == run.job_run_id and run.message == output  # the run keeps it all
