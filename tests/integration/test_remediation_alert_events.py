"""The hand-off's alert events, as the heartbeat service sends them: counted per
alert, each taken once, events of different alerts taken side by side and those
of one alert in order, and the playbook its consecutive failures call for
started once per alert."""
from __future__ import annotations

import grpc
import pytest

from medic.config import Settings
from medic.v1 import remediation_pb2, remediation_pb2_grpc
from services.remediation import app as remediation_app
from tests.support.authorizers import AllowAll
from tests.support.events import alert_event
from tests.support.servers import serving


def playbook(name: str, failures: int) -> str:
    # A step that waits an hour: the executions stay as started.
    return (f"name: {name}\ntrigger:\n  service_pattern: \"nightly-*\"\n  consecutive_failures: {failures}\n"
            "steps:\n  - name: pause\n    type: wait\n    duration: 1h\n")


@pytest.fixture
def remediation(database_url, db):
    settings = Settings(database_url=database_url, remediation_poll_seconds=0.05)
    with serving(remediation_app.build(settings, db), AllowAll()) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield remediation_pb2_grpc.RemediationServiceStub(channel)


def handle(stub, *events) -> list[list[int]]:
    answer = stub.HandleAlertEvents(remediation_pb2.HandleAlertEventsRequest(events=list(events)))
    assert [r.code for r in answer.results] == [0] * len(events)
    return [list(r.execution_ids) for r in answer.results]


def started_playbooks(db) -> dict[int, list[str]]:
    rows = db.all("SELECT alert_id, playbook_name FROM playbook_executions ORDER BY execution_id")
    out: dict[int, list[str]] = {}
    for row in rows:
        out.setdefault(row["alert_id"], []).append(row["playbook_name"])
    return out


def test_a_burst_of_alerts_starts_each_playbook_once_per_alert_in_order(remediation, db):
    for name, failures in (("restart", 1), ("rebuild", 3)):
        remediation.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(yaml=playbook(name, failures)))
    burst = [alert_event(alert_id, service_id=100 + alert_id) for alert_id in range(1, 41)]
    # Alert 1 fails twice more in the same batch: its third failure calls for the rebuild.
    burst += [alert_event(1, "reminder", seq="-1", service_id=101), alert_event(1, "reminder", seq="-2",
                                                                                 service_id=101)]
    results = handle(remediation, *burst)

    assert all(len(r) == 1 for r in results[:40]) and results[40] == []
    assert len(results[41]) == 1
    started = started_playbooks(db)
    assert started[1] == ["restart", "rebuild"]
    assert all(started[a] == ["restart"] for a in range(2, 41))
    counted = {r["alert_id"]: r["failures"] for r in db.all("SELECT alert_id, failures FROM remediation_alerts")}
    assert counted[1] == 3 and {counted[a] for a in range(2, 41)} == {1}


def test_an_event_is_taken_once_and_a_playbook_runs_once_per_alert(remediation, db):
    remediation.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(yaml=playbook("restart", 1)))
    first = alert_event(7)
    assert len(handle(remediation, first)[0]) == 1
    # The hand-off sends it again (an answer lost): nothing more starts, nothing counts twice.
    assert handle(remediation, first, first) == [[], []]
    assert handle(remediation, alert_event(7, "resolve")) == [[]]
    assert handle(remediation, alert_event(7, "reminder", seq="-1")) == [[]]
    assert started_playbooks(db) == {7: ["restart"]}
    assert db.one("SELECT resolved_at IS NOT NULL AS resolved FROM remediation_alerts WHERE alert_id = 7")[
        "resolved"]
    # Each start is in the audit log, as Medic's doing.
    events = db.all("SELECT action_type, principal, execution_id FROM audit_events "
                    "WHERE action_type = 'execution_started'")
    assert [(e["action_type"], e["principal"]) for e in events] == [("execution_started", "medic")]


def test_a_burst_past_a_service_s_breaker_starts_up_to_its_limit_and_records_the_trip(database_url, db):
    settings = Settings(database_url=database_url, remediation_poll_seconds=0.05,
                        remediation_breaker_max_executions=2)
    with serving(remediation_app.build(settings, db), AllowAll()) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = remediation_pb2_grpc.RemediationServiceStub(channel)
            stub.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(yaml=playbook("restart", 1)))
            # Three alerts of one service (7) and one of another (8), in one batch.
            results = handle(stub, alert_event(1), alert_event(2), alert_event(3), alert_event(4, service_id=8))
    # The batch falls back to one event at a time, different alerts side by side: which of
    # the three is refused is not fixed, that two start is.
    assert sorted(len(r) for r in results[:3]) == [0, 1, 1] and len(results[3]) == 1
    assert db.all("SELECT service_id, refused FROM remediation_breaker_trips") == [{"service_id": 7, "refused": 1}]
    assert [e["resource_id"] for e in db.all("SELECT resource_id FROM audit_events "
                                             "WHERE action_type = 'circuit_breaker_tripped'")] == ["7"]
