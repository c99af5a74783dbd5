"""The whole system started as processes with ``medic up``, driven as its users would."""
from __future__ import annotations

import itertools
import os
import signal
import threading
import time

import grpc
import psycopg2
import pytest
import requests
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from medic.client import MedicClient
from medic.v1 import heartbeat_pb2 as pb
from tests.support.system import start_medic

pytestmark = pytest.mark.e2e


def register(medic, name: str = "web", *, again: bool = False, **fields) -> dict:
    """Registers ``name`` through the legacy API: new (201), or ``again`` (200, unchanged)."""
    body = {"heartbeat_name": name, "service_name": f"{name}-svc", "alert_interval": 5, **fields}
    response = requests.post(f"{medic.gateway_url}/service", json=body, headers=medic.auth_header, timeout=10)
    expected = ((200, "Heartbeat is already registered.") if again
                else (201, "Heartbeat successfully registered."))
    assert (response.status_code, response.json()["message"]) == expected, response.text
    return response.json()["results"][0]


def test_legacy_http_and_grpc_clients_work_against_medic_up(medic_up):
    url = medic_up.gateway_url
    assert "Created an admin API key" in "".join(medic_up.output)
    assert medic_up.admin_key in "".join(medic_up.output)
    assert oct(os.stat(os.path.join(medic_up.env["MEDIC_DATA_DIR"], "admin.key")).st_mode & 0o777) == "0o600"
    registered = register(medic_up)
    assert register(medic_up, again=True)["service_id"] == registered["service_id"]
    unauthenticated = requests.post(f"{url}/heartbeat", json={"heartbeat_name": "web", "status": "UP"}, timeout=10)
    assert unauthenticated.status_code == 401
    posted = requests.post(f"{url}/heartbeat", json={"heartbeat_name": "web", "status": "UP"},
                           headers=medic_up.auth_header, timeout=10)
    assert posted.status_code == 201 and posted.json()["message"] == "Heartbeat Posted Successfully."

    with MedicClient(medic_up.heartbeat_target, api_key=medic_up.admin_key) as client:
        hb = client.heartbeat("web", status="DEGRADED")
        assert hb.heartbeat_name == "web" and hb.status == "DEGRADED"
        services = client.heartbeats.ListServices(pb.ListServicesRequest()).services
        assert [s.heartbeat_name for s in services] == ["web"]

    listed = requests.get(f"{url}/heartbeat", params={"heartbeat_name": "web"}, headers=medic_up.auth_header,
                          timeout=10).json()["results"]
    assert [h["status"] for h in listed] == ["DEGRADED", "UP"]

    with grpc.insecure_channel(medic_up.heartbeat_target) as channel:  # what `grpcurl list` shows
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"medic.v1.HeartbeatService", "grpc.health.v1.Health"} <= services
    assert requests.get(f"{url}/health/ready", timeout=10).json()["status"] == "ready"


def _post_until(url: str, key: str, stop: threading.Event, acknowledged: list[str], counter) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    while not stop.is_set():
        status = f"N{next(counter)}"
        try:
            response = session.post(f"{url}/heartbeat", json={"heartbeat_name": "web", "status": status},
                                    timeout=5)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        if response.status_code == 201:
            acknowledged.append(status)
        else:
            assert response.status_code in (502, 503, 504), response.text
            time.sleep(0.05)


@pytest.mark.parametrize("victim", ["gateway", "heartbeat"])
def test_kill_9_loses_no_acknowledged_heartbeat(medic_up, database_url, victim):
    url = medic_up.gateway_url
    register(medic_up)
    stop, acknowledged, counter = threading.Event(), [], itertools.count()
    senders = [threading.Thread(target=_post_until, args=(url, medic_up.admin_key, stop, acknowledged, counter))
               for _ in range(4)]
    for sender in senders:
        sender.start()
    time.sleep(1.0)
    before_kill = len(acknowledged)
    os.kill(medic_up.child_pid(victim), signal.SIGKILL)
    # The launcher restarts the victim; heartbeats are acknowledged again afterwards.
    deadline = time.monotonic() + 30
    after_kill = len(acknowledged)
    while len(acknowledged) < after_kill + 50:
        assert time.monotonic() < deadline, "no heartbeat acknowledged after the restart"
        time.sleep(0.2)
    stop.set()
    for sender in senders:
        sender.join()
    assert before_kill > 0
    with psycopg2.connect(database_url, options="-c search_path=medic") as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM heartbeat_events")
        stored = {row[0] for row in cur.fetchall()}
    lost = [s for s in acknowledged if s not in stored]
    assert not lost, f"{len(lost)} acknowledged heartbeats are missing"


def test_embedded_postgres_keeps_data_across_restarts(tmp_path):
    medic = start_medic(tmp_path, database_url=None, timeout=180)
    try:
        assert (tmp_path / "data" / "postgres").is_dir()
        register(medic, "persisted")
        posted = requests.post(f"{medic.gateway_url}/heartbeat", headers=medic.auth_header,
                               json={"heartbeat_name": "persisted", "status": "UP"}, timeout=10)
        assert posted.status_code == 201
    finally:
        assert medic.stop() == 0
    assert "Medic stopped." in "".join(medic.output)

    again = start_medic(tmp_path, database_url=None, timeout=180)
    try:
        assert "Created an admin API key" not in "".join(again.output)  # the key is made once
        listed = requests.get(f"{again.gateway_url}/heartbeat", params={"heartbeat_name": "persisted"},
                              headers=again.auth_header, timeout=10).json()["results"]
        assert [h["status"] for h in listed] == ["UP"]
    finally:
        again.stop()
