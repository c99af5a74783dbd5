"""Scheduled jobs through a real gateway: the legacy and /v2 routes, runs and
statistics, the job fields of POST /service, and the output limit."""
from __future__ import annotations

import datetime as dt

import numpy
import pytest

from tests.integration.test_cli import admin, ok  # noqa: F401 (fixtures; medic is in conftest.py)


def register(http, name="nightly", **fields) -> dict:
    response = http.post("/service", json={"heartbeat_name": name, "service_name": "batch",
                                           "alert_interval": 60, **fields})
    assert response.status_code == 201, response.text
    return response.json()["results"][0]


def test_job_signals_and_heartbeats_make_runs_listed_over_v2(http):
    job = register(http)
    sid = job["service_id"]
    assert http.post(f"/v2/heartbeat/{sid}/start", json={"run_id": "r1"}).status_code == 201
    assert http.post(f"/v2/heartbeat/{sid}/complete", json={"run_id": "r1", "message": "exit 0"}).status_code == 201
    assert http.post("/heartbeat", json={"heartbeat_name": "nightly", "status": "STARTED"}).status_code == 201
    assert http.post("/heartbeat", json={"heartbeat_name": "nightly", "status": "FAILED",
                                         "message": "exit 2\nno space left"}).status_code == 201

    page = http.get(f"/v2/services/{sid}/runs", params={"limit": 1})
    assert page.status_code == 200
    [newest] = page.json()["results"]
    assert (newest["status"], newest["message"], newest["run_id"]) == ("failed", "exit 2\nno space left", "")
    assert newest["duration_ms"] >= 0 and newest["started_at"] and newest["completed_at"]
    assert 'rel="next"' in page.headers["Link"]
    older = http.get(f"/v2/services/{sid}/runs", params={"offset": 1}).json()["results"]
    assert [(r["run_id"], r["status"], r["message"]) for r in older] == [("r1", "completed", "exit 0")]


def test_stats_over_v2_as_the_original_shaped_them(http, db):
    sid = register(http)["service_id"]
    empty = http.get(f"/v2/services/{sid}/stats")
    assert empty.status_code == 200
    assert empty.json()["results"] == {
        "service_id": sid, "run_count": 0, "avg_duration_ms": None, "p50_duration_ms": None,
        "p95_duration_ms": None, "p99_duration_ms": None, "min_duration_ms": None, "max_duration_ms": None,
        "success_rate": None, "ended_runs": 0}
    durations = [1200, 900, 3000, 45000, 800, 1000]
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for n, duration in enumerate(durations):
        db.execute("INSERT INTO job_runs (service_id, status, started_at, completed_at, duration_ms)"
                   " VALUES (%s, 'completed', %s, %s, %s)",
                   (sid, base, base + dt.timedelta(seconds=n + 100), duration))
    stats = http.get(f"/v2/services/{sid}/stats").json()["results"]
    assert stats["run_count"] == 6 and stats["success_rate"] == 1.0
    assert stats["p95_duration_ms"] == pytest.approx(numpy.percentile(durations, 95))
    assert (stats["min_duration_ms"], stats["max_duration_ms"]) == (800, 45000)


def test_stats_of_an_unknown_service_is_404_not_found(http):
    response = http.get("/v2/services/424242/stats")
    assert response.status_code == 404 and "not found" in response.json()["message"]
    assert http.get("/v2/services/424242/runs").status_code == 404


def test_output_over_10_kib_is_refused_with_413_and_nothing_is_recorded(http):
    sid = register(http)["service_id"]
    too_long = "x" * (10 * 1024 + 1)
    assert http.post("/heartbeat", json={"heartbeat_name": "nightly", "status": "FAILED",
                                         "message": too_long}).status_code == 413
    response = http.post(f"/v2/heartbeat/{sid}/fail", json={"message": too_long})
    assert response.status_code == 413 and "message" in response.json()["message"]
    assert http.get(f"/v2/services/{sid}/runs").json()["results"] == []
    assert http.post(f"/v2/heartbeat/{sid}/fail", json={"message": "x" * 10 * 1024}).status_code == 201


def test_post_service_takes_the_job_fields_and_shows_them_everywhere(http):
    job = register(http, schedule="30 9 * * 1-5", timezone="Europe/Berlin", max_duration_seconds=600,
                   min_duration_seconds=10, failure_tolerance=2)
    fields = ("schedule", "timezone", "max_duration_seconds", "min_duration_seconds", "failure_tolerance")
    expected = ("30 9 * * 1-5", "Europe/Berlin", 600, 10, 2)
    assert tuple(job[f] for f in fields) == expected
    assert tuple(http.get("/service/nightly").json()["results"][0][f] for f in fields) == expected
    listed = [s for s in http.get("/service").json()["results"] if s["heartbeat_name"] == "nightly"]
    assert tuple(listed[0][f] for f in fields) == expected
    updated = http.post("/service/nightly", json={"schedule": "0 3 L * *", "timezone": "America/New_York",
                                                  "failure_tolerance": 0, "max_duration_seconds": 0})
    assert updated.status_code == 200
    assert tuple(updated.json()["results"][0][f] for f in fields) == (
        "0 3 L * *", "America/New_York", None, 10, 0)
    old_client = register(http, "old-client")
    assert (old_client["schedule"], old_client["timezone"], old_client["failure_tolerance"]) == (None, "UTC", 0)


@pytest.mark.parametrize("fields, status, words", [
    ({"schedule": "every day"}, 400, "cron"),
    ({"timezone": "Europe/Atlantis"}, 400, "IANA"),
    ({"failure_tolerance": "two"}, 400, "failure_tolerance"),
    ({"max_duration_seconds": -1}, 400, "max_duration_seconds"),
])
def test_bad_job_fields_at_registration_are_400_naming_the_problem(http, fields, status, words):
    response = http.post("/service", json={"heartbeat_name": "bad", "service_name": "batch",
                                           "alert_interval": 60, **fields})
    assert response.status_code == status and words in response.json()["message"], response.text


def test_a_plain_text_body_is_the_runs_output_and_the_query_names_the_run(http):
    sid = register(http)["service_id"]
    assert http.post(f"/v2/heartbeat/{sid}/start?run_id=cron-1").status_code == 201
    assert http.post(f"/v2/heartbeat/{sid}/start?run_id=cron-2").status_code == 201
    ended = http.post(f"/v2/heartbeat/{sid}/fail?run_id=cron-1", data="exit code 3\nERROR: disk full\n".encode(),
                      headers={"Content-Type": "text/plain; charset=utf-8"})
    assert ended.status_code == 201 and ended.json()["results"]["run_id"] == "cron-1"
    runs = http.get(f"/v2/services/{sid}/runs").json()["results"]
    assert [(r["run_id"], r["status"], r["message"]) for r in runs] == [
        ("cron-2", "running", ""), ("cron-1", "failed", "exit code 3\nERROR: disk full\n")]
    too_long = http.post(f"/v2/heartbeat/{sid}/fail?run_id=cron-2", data=b"x" * (10 * 1024 + 1),
                         headers={"Content-Type": "text/plain"})
    assert too_long.status_code == 413


def test_a_scheduled_service_registers_without_an_interval_and_an_unscheduled_one_still_needs_it(http):
    response = http.post("/service", json={"heartbeat_name": "weekday-report", "service_name": "batch",
                                           "schedule": "30 9 * * 1-5", "timezone": "Europe/Berlin"})
    assert response.status_code == 201, response.text
    [job] = response.json()["results"]
    # The schedule sets the deadline; its shortest gap (a day) paces the reminders.
    assert (job["schedule"], job["alert_interval_seconds"]) == ("30 9 * * 1-5", 86400)
    assert dt.datetime.fromisoformat(job["deadline_at"]).astimezone(
        dt.timezone(dt.timedelta(hours=1))).strftime("%H:%M") in ("09:30", "10:30")
    with_both = register(http, "hourly", schedule="0 * * * *", alert_interval_seconds=600)
    assert with_both["alert_interval_seconds"] == 600  # an interval sent is kept

    for body in ({"heartbeat_name": "plain", "service_name": "batch"},
                 {"heartbeat_name": "plain", "service_name": "batch", "schedule": " "}):
        missing = http.post("/service", json=body)
        assert missing.status_code == 400
        assert "Field `alert_interval` is missing." in missing.json()["message"]


def test_grpc_registers_a_scheduled_service_without_an_interval(heartbeats):
    import grpc

    from medic.v1 import heartbeat_pb2

    made = heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(
        heartbeat_name="every-5", service_name="batch", schedule="*/5 * * * *")).service
    assert (made.schedule, made.alert_interval_seconds) == ("*/5 * * * *", 300)
    with pytest.raises(grpc.RpcError) as refused:
        heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(heartbeat_name="no-5", service_name="b"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "alert_interval_seconds must be between 1 and 31536000"


def test_the_cli_registers_a_scheduled_service_without_an_interval(admin):
    [made] = ok(admin("--json", "services", "register", "nightly-dump", "--service-name", "db",
                      "--schedule", "0 3 * * *", "--timezone", "Europe/Berlin")).json()
    assert (made["schedule"], made["alert_interval_seconds"]) == ("0 3 * * *", 86400)
    refused = admin("services", "register", "adhoc", "--service-name", "db")
    assert refused.code != 0 and "--schedule" in refused.err
