"""HeartbeatService over real gRPC against a real PostgreSQL."""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import time

import grpc
import psycopg2
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from medic.config import Settings
from medic.db import Database
from medic.server import create_server
from tests.support.authorizers import AllowAll
from medic.v1 import common_pb2, heartbeat_pb2 as pb, heartbeat_pb2_grpc
from services.heartbeat import app as heartbeat_app
from tests.support.tcpproxy import TcpProxy


def register(stub, name="web", interval=60, **fields):
    return stub.RegisterService(pb.RegisterServiceRequest(
        heartbeat_name=name, service_name=fields.pop("service_name", "web-svc"),
        alert_interval_seconds=interval, **fields))


def beat(stub, name="web", status="UP", **fields):
    return stub.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name=name, status=status, **fields))


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_registering_twice_changes_nothing_and_names_match_case_insensitively(heartbeats):
    first = register(heartbeats, "Nightly-Backup", interval=120, threshold=2, team="storage",
                     priority=common_pb2.PRIORITY_P1)
    assert first.created and first.service.service_id > 0
    assert first.service.state == pb.SERVICE_STATE_NEW
    again = register(heartbeats, "nightly-backup", interval=5)
    assert not again.created
    assert again.service.service_id == first.service.service_id
    assert again.service.alert_interval_seconds == 120
    assert again.service.team == "storage" and again.service.priority == common_pb2.PRIORITY_P1


@pytest.mark.parametrize("fields, word", [
    ({"heartbeat_name": ""}, "heartbeat_name"),
    ({"heartbeat_name": "x" * 256}, "heartbeat_name"),
    ({"service_name": " "}, "service_name"),
    ({"alert_interval_seconds": 0}, "alert_interval_seconds"),
    ({"threshold": -1}, "threshold"),
    ({"grace_period_seconds": -5}, "grace_period_seconds"),
])
def test_invalid_registration_is_rejected_with_the_field_named(heartbeats, fields, word):
    request = dict(heartbeat_name="web", service_name="web", alert_interval_seconds=60)
    request.update(fields)
    with pytest.raises(grpc.RpcError) as info:
        heartbeats.RegisterService(pb.RegisterServiceRequest(**request))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in info.value.details()


def test_acknowledged_heartbeat_is_committed_and_moves_the_deadline(heartbeats, db):
    service = register(heartbeats, interval=60).service
    reply = beat(heartbeats, "WEB", status="degraded", run_id="run-1")
    hb = reply.heartbeat
    assert hb.status == "DEGRADED" and hb.run_id == "run-1" and hb.heartbeat_name == "web"
    row = db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s", (service.service_id,))
    assert row["n"] == 1  # visible to another connection: committed before OK
    after = heartbeats.GetService(pb.GetServiceRequest(service_id=service.service_id)).service
    assert after.state == pb.SERVICE_STATE_UP
    assert after.deadline_at.ToDatetime() - hb.time.ToDatetime() == dt.timedelta(seconds=60)


def test_threshold_two_deadline_follows_the_second_most_recent_heartbeat(heartbeats):
    register(heartbeats, threshold=2, interval=100, grace_period_seconds=5)
    first = beat(heartbeats).heartbeat.time.ToDatetime()
    beat(heartbeats)
    service = heartbeats.GetService(pb.GetServiceRequest(heartbeat_name="web")).service
    assert service.deadline_at.ToDatetime() == first + dt.timedelta(seconds=105)


def test_failed_heartbeat_is_recorded_but_does_not_move_the_deadline(heartbeats):
    register(heartbeats)
    beat(heartbeats)
    before = heartbeats.GetService(pb.GetServiceRequest(heartbeat_name="web")).service.deadline_at
    failed = beat(heartbeats, status="FAILED").heartbeat
    assert failed.status == "FAILED"
    after = heartbeats.GetService(pb.GetServiceRequest(heartbeat_name="web")).service
    assert after.deadline_at == before
    assert after.last_heartbeat_at == failed.time


def test_unknown_and_inactive_services_are_refused(heartbeats):
    assert code_of(lambda: beat(heartbeats, "nope")) == grpc.StatusCode.NOT_FOUND
    register(heartbeats)
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="web", active=False))
    assert code_of(lambda: beat(heartbeats)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: beat(heartbeats, status="")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(status="UP"))) \
        == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_reports_one_outcome_per_item_in_order(heartbeats, db):
    register(heartbeats, "a")
    register(heartbeats, "b")
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="b", active=False))
    reply = heartbeats.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=[
        pb.RecordHeartbeatRequest(heartbeat_name="a", status="UP"),
        pb.RecordHeartbeatRequest(heartbeat_name="missing", status="UP"),
        pb.RecordHeartbeatRequest(heartbeat_name="b", status="UP"),
        pb.RecordHeartbeatRequest(heartbeat_name="A", status=""),
        pb.RecordHeartbeatRequest(heartbeat_name="A", status="up"),
    ]))
    assert [r.outcome for r in reply.results] == [
        pb.RECORD_OUTCOME_ACCEPTED, pb.RECORD_OUTCOME_UNKNOWN_SERVICE, pb.RECORD_OUTCOME_INACTIVE_SERVICE,
        pb.RECORD_OUTCOME_INVALID, pb.RECORD_OUTCOME_ACCEPTED]
    assert "status" in reply.results[3].message
    assert db.one("SELECT count(*) AS n FROM heartbeat_events")["n"] == 2
    assert code_of(lambda: heartbeats.RecordHeartbeats(pb.RecordHeartbeatsRequest())) \
        == grpc.StatusCode.INVALID_ARGUMENT


def test_a_batch_asked_for_outcomes_only_records_the_same_and_returns_no_heartbeats(heartbeats, db):
    register(heartbeats, "a")
    items = [pb.RecordHeartbeatRequest(heartbeat_name="a", status="UP"),
             pb.RecordHeartbeatRequest(heartbeat_name="missing", status="UP")]
    full = heartbeats.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=items))
    lean = heartbeats.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=items, outcomes_only=True))
    assert [r.outcome for r in lean.results] == [r.outcome for r in full.results] == [
        pb.RECORD_OUTCOME_ACCEPTED, pb.RECORD_OUTCOME_UNKNOWN_SERVICE]
    assert full.results[0].heartbeat.heartbeat_name == "a"
    assert not lean.results[0].HasField("heartbeat")
    assert db.one("SELECT count(*) AS n FROM heartbeat_events")["n"] == 2


def test_concurrent_heartbeats_for_one_service_are_all_committed(heartbeats, db):
    service = register(heartbeats, threshold=5).service
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: beat(heartbeats), range(200)))
    assert len({r.heartbeat.heartbeat_id for r in replies}) == 200
    row = db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s", (service.service_id,))
    assert row["n"] == 200
    beats = db.one("SELECT cardinality(recent_beats) AS n FROM services WHERE service_id = %s",
                   (service.service_id,))
    assert beats["n"] == 5


def test_raising_the_threshold_recomputes_the_deadline_from_recorded_heartbeats(heartbeats):
    register(heartbeats, interval=60)
    times = [beat(heartbeats).heartbeat.time.ToDatetime() for _ in range(3)]
    service = heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="web", threshold=3)).service
    assert service.deadline_at.ToDatetime() == times[0] + dt.timedelta(seconds=60)


def test_reactivation_restarts_the_clock(heartbeats):
    register(heartbeats, interval=60)
    beat(heartbeats)
    inactive = heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="web", active=False)).service
    assert not inactive.HasField("deadline_at")
    time.sleep(0.05)
    active = heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="web", active=True)).service
    assert active.activated_at.ToDatetime() > inactive.activated_at.ToDatetime()
    assert active.deadline_at.ToDatetime() == active.activated_at.ToDatetime() + dt.timedelta(seconds=60)


def test_update_changes_only_the_fields_given(heartbeats):
    register(heartbeats, runbook="https://runbooks/web", priority=common_pb2.PRIORITY_P2)
    service = heartbeats.UpdateService(pb.UpdateServiceRequest(
        heartbeat_name="web", muted=True, notify_mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS)).service
    assert service.muted and service.HasField("muted_at")
    assert service.notify_mode == common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
    assert service.runbook == "https://runbooks/web" and service.priority == common_pb2.PRIORITY_P2
    service = heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="web", muted=False)).service
    assert not service.muted and not service.HasField("muted_at")
    assert code_of(lambda: heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="nope", muted=True))) \
        == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: heartbeats.UpdateService(pb.UpdateServiceRequest(
        heartbeat_name="web", priority=common_pb2.PRIORITY_UNSPECIFIED))) == grpc.StatusCode.INVALID_ARGUMENT


def test_list_services_filters_by_name_and_active(heartbeats):
    register(heartbeats, "a", service_name="shop")
    register(heartbeats, "b", service_name="shop")
    register(heartbeats, "c", service_name="blog")
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="b", active=False))
    names = lambda **kw: [s.heartbeat_name for s in heartbeats.ListServices(pb.ListServicesRequest(**kw)).services]
    assert names() == ["a", "b", "c"]
    assert names(service_name="shop") == ["a", "b"]
    assert names(service_name="shop", active=True) == ["a"]
    assert names(active=False) == ["b"]


def test_list_heartbeats_newest_first_capped_at_250(heartbeats):
    register(heartbeats, "a", service_name="shop")
    register(heartbeats, "b", service_name="blog")
    heartbeats.RecordHeartbeats(pb.RecordHeartbeatsRequest(heartbeats=[
        pb.RecordHeartbeatRequest(heartbeat_name="a", status="UP") for _ in range(260)]))
    beat(heartbeats, "b", status="LATEST")
    everything = heartbeats.ListHeartbeats(pb.ListHeartbeatsRequest()).heartbeats
    assert len(everything) == 250 and everything[0].status == "LATEST"
    only_a = heartbeats.ListHeartbeats(pb.ListHeartbeatsRequest(heartbeat_name="A", max_count=3)).heartbeats
    assert len(only_a) == 3 and {h.heartbeat_name for h in only_a} == {"a"}
    blog = heartbeats.ListHeartbeats(pb.ListHeartbeatsRequest(service_name="blog")).heartbeats
    assert [h.status for h in blog] == ["LATEST"]
    assert blog[0].team == "site-reliability" and blog[0].priority == common_pb2.PRIORITY_P3


def test_job_signals_record_started_completed_failed(heartbeats):
    service = register(heartbeats).service
    statuses = []
    for signal in (pb.JOB_SIGNAL_START, pb.JOB_SIGNAL_COMPLETE, pb.JOB_SIGNAL_FAIL):
        reply = heartbeats.RecordJobSignal(pb.RecordJobSignalRequest(
            service_id=service.service_id, signal=signal, run_id="nightly-42"))
        statuses.append((reply.heartbeat.status, reply.heartbeat.run_id))
    assert statuses == [("STARTED", "nightly-42"), ("COMPLETED", "nightly-42"), ("FAILED", "nightly-42")]
    assert code_of(lambda: heartbeats.RecordJobSignal(pb.RecordJobSignalRequest(
        service_id=service.service_id))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: heartbeats.RecordJobSignal(pb.RecordJobSignalRequest(
        service_id=99999, signal=pb.JOB_SIGNAL_START))) == grpc.StatusCode.NOT_FOUND


def test_database_allows_one_active_alert_per_service(heartbeats, db):
    service_id = register(heartbeats).service.service_id
    db.execute("INSERT INTO alerts (service_id, reason) VALUES (%s, 'missed_heartbeats')", (service_id,))
    with pytest.raises(psycopg2.errors.UniqueViolation):
        with psycopg2.connect(db.dsn, options="-c search_path=medic") as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO alerts (service_id, reason) VALUES (%s, 'reported_failure')", (service_id,))
    db.execute("UPDATE alerts SET active = false, closed_at = now() WHERE service_id = %s", (service_id,))
    db.execute("INSERT INTO alerts (service_id, reason) VALUES (%s, 'reported_failure')", (service_id,))
    alerts = heartbeats.ListAlerts(pb.ListAlertsRequest()).alerts
    assert [a.reason for a in alerts] == [pb.ALERT_REASON_REPORTED_FAILURE, pb.ALERT_REASON_MISSED_HEARTBEATS]
    active = heartbeats.ListAlerts(pb.ListAlertsRequest(active=True)).alerts
    assert len(active) == 1 and active[0].active and not active[0].HasField("closed_at")
    closed = heartbeats.ListAlerts(pb.ListAlertsRequest(active=False)).alerts
    assert len(closed) == 1 and closed[0].HasField("closed_at") and closed[0].heartbeat_name == "web"


def test_health_and_reflection_are_served(heartbeat_channel):
    health = health_pb2_grpc.HealthStub(heartbeat_channel)
    for name in ("", "medic.v1.HeartbeatService", "medic.dependency.database"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
            health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    services = set(ProtoReflectionDescriptorDatabase(heartbeat_channel).get_services())
    assert {"medic.v1.HeartbeatService", "grpc.health.v1.Health"} <= services


def proxied_database(database_url: str) -> tuple[TcpProxy, str]:
    """A proxy in front of the test database, and the URI that goes through it."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(database_url)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    if socket_dir.startswith("/"):  # the embedded server listens on a unix socket only
        proxy = TcpProxy("", 0, unix_path=f"{socket_dir}/.s.PGSQL.{parts.port or 5432}")
    else:
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    user = parts.username or "postgres"
    return proxy, f"postgresql://{user}@127.0.0.1:{proxy.port}{parts.path}"


def test_database_outage_gives_unavailable_and_recovers_without_restart(database_url):
    proxy, proxied = proxied_database(database_url)
    db = Database(proxied, size=4)
    running = create_server(heartbeat_app.build(Settings(database_url=proxied), db=db), port=0,
                            authorizer=AllowAll())
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    try:
        register(stub)
        beat(stub)
        proxy.cut()
        assert code_of(lambda: beat(stub)) == grpc.StatusCode.UNAVAILABLE
        running.check_readiness()
        assert health.Check(health_pb2.HealthCheckRequest(service="medic.dependency.database")).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        proxy.restore()
        deadline = time.monotonic() + 10
        while True:
            try:
                beat(stub)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline, "no recovery after the database came back"
                time.sleep(0.2)
        assert running.check_readiness()
    finally:
        channel.close()
        running.stop(1)
        proxy.close()
