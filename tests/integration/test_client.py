"""medic/client.py against real Medic gRPC servers on loopback: retries on
UNAVAILABLE (and only on it), giving up, and the API key it sends. Attempts are
counted where the server counts them, in ``medic_rpc_requests_total``."""
from __future__ import annotations

import threading
import time

import grpc
import pytest
from prometheus_client import REGISTRY

from medic.client import MedicClient
from medic.config import Settings
from medic.db import Database
from medic.server import create_server
from tests.support.authorizers import AllowAll
from medic.v1 import heartbeat_pb2
from services.heartbeat import app as heartbeat_app
from tests.support.databases import with_database
from tests.support.ports import free_port


def served(method: str, code: str) -> float:
    """How many ``method`` calls the heartbeat servers of this process answered with ``code``."""
    return REGISTRY.get_sample_value(
        "medic_rpc_requests_total", {"service": "heartbeat", "method": method, "code": code}) or 0.0


def test_call_is_retried_until_the_server_comes_up(database_url, db):
    port = free_port()
    settings = Settings(database_url=database_url, monitor_enabled=False)
    started: list = []

    def start_later():
        time.sleep(0.5)  # the first attempt meets a closed port
        started.append(create_server(heartbeat_app.build(settings, db=db), port=port, workers=4,
                                     authorizer=AllowAll()))

    before = served("ListServices", "OK")
    starter = threading.Thread(target=start_later)
    began = time.monotonic()
    starter.start()
    try:
        with MedicClient(f"127.0.0.1:{port}", retries=6, backoff=0.1) as client:
            response = client.heartbeats.ListServices(heartbeat_pb2.ListServicesRequest())
        elapsed = time.monotonic() - began
    finally:
        starter.join()
        for running in started:
            running.stop(grace=1)

    assert list(response.services) == []
    assert elapsed >= 0.5  # it could only succeed once the server was there
    assert served("ListServices", "OK") - before == 1


def test_call_gives_up_with_unavailable_when_nothing_listens():
    began = time.monotonic()
    with MedicClient(f"127.0.0.1:{free_port()}", retries=2, backoff=0.05) as client:
        with pytest.raises(grpc.RpcError) as failed:
            client.heartbeats.ListServices(heartbeat_pb2.ListServicesRequest())
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - began < 4  # refused connections fail fast, not at the deadline


def test_call_gives_up_after_its_retries_when_the_service_answers_unavailable(pg_server_url):
    # A real heartbeat service whose database does not exist: every call is UNAVAILABLE.
    missing = with_database(pg_server_url, "medic_no_such_database")
    db = Database(missing, size=2, application_name="medic-test", connect_timeout=2)
    running = create_server(heartbeat_app.build(Settings(database_url=missing, monitor_enabled=False), db=db),
                            port=0, workers=4, authorizer=AllowAll())
    before = served("ListServices", "UNAVAILABLE")
    try:
        with MedicClient(f"127.0.0.1:{running.port}", retries=2, backoff=0.05) as client:
            with pytest.raises(grpc.RpcError) as failed:
                client.heartbeats.ListServices(heartbeat_pb2.ListServicesRequest())
    finally:
        running.stop(grace=1)
        db.close()

    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert served("ListServices", "UNAVAILABLE") - before == 3  # the call and its 2 retries


@pytest.mark.parametrize("request_, code", [
    (heartbeat_pb2.GetServiceRequest(heartbeat_name="never-registered"), grpc.StatusCode.NOT_FOUND),
    (heartbeat_pb2.RegisterServiceRequest(heartbeat_name=""), grpc.StatusCode.INVALID_ARGUMENT),
], ids=["not-found", "invalid-argument"])
def test_errors_other_than_unavailable_are_not_retried(heartbeat_server, request_, code):
    method = type(request_).__name__.removesuffix("Request")
    before = served(method, code.name)

    with MedicClient(f"127.0.0.1:{heartbeat_server.port}", retries=3, backoff=0.05) as client:
        with pytest.raises(grpc.RpcError) as failed:
            getattr(client.heartbeats, method)(request_)

    assert failed.value.code() == code
    assert served(method, code.name) - before == 1


def test_api_key_is_sent_with_every_call(stack):
    target = stack.settings.heartbeat_target
    request = heartbeat_pb2.ListServicesRequest()
    before = served("ListServices", "UNAUTHENTICATED")

    for key in (None, "mdk_not-a-real-key"):
        with MedicClient(target, api_key=key, retries=3, backoff=0.05) as client:
            with pytest.raises(grpc.RpcError) as refused:
                client.heartbeats.ListServices(request)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, key
    assert served("ListServices", "UNAUTHENTICATED") - before == 2  # refused once each, not retried

    with MedicClient(target, api_key=stack.admin_key) as client:
        client.heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(
            heartbeat_name="nightly-backup", service_name="backup", alert_interval_seconds=60))
        heartbeat = client.heartbeat("nightly-backup", status="UP")
        assert heartbeat.heartbeat_name == "nightly-backup" and heartbeat.status == "UP"
        assert [s.heartbeat_name for s in client.heartbeats.ListServices(request).services] == ["nightly-backup"]


def test_a_run_around_a_block_is_started_and_completed_or_failed_with_its_output(database_url, db):
    settings = Settings(database_url=database_url, monitor_enabled=False)
    running = create_server(heartbeat_app.build(settings, db=db), port=0, workers=4, authorizer=AllowAll())
    try:
        with MedicClient(f"127.0.0.1:{running.port}") as client:
            client.heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(
                heartbeat_name="etl", service_name="data", alert_interval_seconds=3600))
            with client.run("etl", run_id="ok-1") as run:
                run.output = "loaded 7 rows"
            with pytest.raises(ZeroDivisionError):
                with client.run("etl"):
                    1 / 0
            client.start("etl", "manual")
            client.complete("etl", "manual", message="done")
            runs = client.runs("etl")
            stats = client.stats("etl")
    finally:
        running.stop(grace=1)
    assert [(r.run_id, heartbeat_pb2.RunStatus.Name(r.status), r.message) for r in runs] == [
        ("manual", "RUN_STATUS_COMPLETED", "done"),
        (runs[1].run_id, "RUN_STATUS_FAILED", "ZeroDivisionError: division by zero"),
        ("ok-1", "RUN_STATUS_COMPLETED", "loaded 7 rows")]
    assert len(runs[1].run_id) == 32  # a run id of its own
    assert stats.run_count == 2 and stats.ended_runs == 3
