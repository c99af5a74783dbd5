"""Querying the change history: GET /v2/audit-logs (the original's filters,
paging, 400s and CSV export, extended with resource and resource_id), the
ListAuditEvents RPC, and a read key may query."""
from __future__ import annotations

import csv
import datetime as dt
import io

import grpc
import pytest

from medic import audit
from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc
from tests.support.auth import bearer
from tests.support.http import HttpClient


@pytest.fixture
def admin(http, stack):
    """An admin HTTP client whose key allows many management calls a minute."""
    created = http.post("/v2/api-keys", json={"name": "audit-test", "scopes": ["admin"],
                                             "rate_limits": {"management_per_minute": 100000}})
    assert created.status_code == 201, created.text
    client = HttpClient(http.url, created.json()["results"]["key"])
    yield client
    client.session.close()


def _register(client, name: str) -> int:
    client.post("/service", json={"heartbeat_name": name, "service_name": name, "alert_interval": 1})
    return client.get(f"/service/{name}").json()["results"][0]["service_id"]


def _log(client, **params):
    answer = client.get("/v2/audit-logs", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_filters_by_service_action_actor_resource_and_dates(admin):
    billing = _register(admin, "billing")
    search = _register(admin, "search")
    admin.post("/service/billing", json={"muted": 1}, headers={"X-Actor": "carol"})
    admin.post("/service/search", json={"active": 0}, headers={"X-Actor": "dan"})
    team = admin.post("/v2/teams", json={"name": "ops"}).json()["results"]

    assert [e["action_type"] for e in _log(admin, service_id=billing)["entries"]] == ["mute", "register"]
    assert [e["service_id"] for e in _log(admin, action_type="deactivate")["entries"]] == [search]
    assert [e["actor"] for e in _log(admin, actor="carol")["entries"]] == ["carol"]
    assert _log(admin, resource="team", resource_id=str(team["team_id"]))["total_count"] == 1
    by_name = _log(admin, heartbeat_name="search")["entries"]
    assert [e["action_type"] for e in by_name] == ["deactivate", "register"]

    now = dt.datetime.now(dt.timezone.utc)
    assert _log(admin, start_date=(now + dt.timedelta(hours=1)).isoformat())["total_count"] == 0
    assert _log(admin, end_date=(now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z"))[
        "total_count"] == 0
    everything = _log(admin, start_date=(now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z"))
    assert everything["total_count"] >= 5


def test_an_entry_says_who_what_before_after_and_when(admin):
    _register(admin, "billing")
    admin.post("/service/billing", json={"muted": 1}, headers={"X-Actor": "carol", "X-Request-Id": "req-123"})
    [entry] = _log(admin, action_type="mute")["entries"]
    assert entry["actor"] == "carol" and entry["x_actor"] == "carol" and entry["key_name"] == "audit-test"
    assert entry["before"]["muted"] is False and entry["after"]["muted"] is True
    assert entry["resource"] == "service" and entry["request_id"] == "req-123"
    assert entry["timestamp"].endswith("Z") and entry["log_id"] > 0


def test_paging_defaults_to_50_at_most_250_with_total_and_has_more(admin, db):
    for n in range(260):  # events written as a service would, straight into the log
        with db.transaction() as tx:
            audit.record(tx, source="heartbeat", action_type="edit", resource="service", resource_id=7,
                         service_id=7, who=audit.SYSTEM, before={"n": n}, after={"n": n + 1})
    first = _log(admin, service_id=7)
    assert (len(first["entries"]), first["total_count"], first["limit"], first["offset"], first["has_more"]) == (
        50, 260, 50, 0, True)
    assert first["entries"][0]["after"]["n"] == 260  # newest first
    most = _log(admin, service_id=7, limit=1000)
    assert (len(most["entries"]), most["limit"]) == (250, 250)
    last = _log(admin, service_id=7, limit=250, offset=250)
    assert (len(last["entries"]), last["has_more"]) == (10, False)
    assert last["entries"][-1]["after"]["n"] == 1


@pytest.mark.parametrize("params, message", [
    ({"action_type": "frobnicate"}, "Invalid action_type. Must be one of: "),
    ({"start_date": "yesterday"}, "Invalid start_date format. Use ISO format (e.g., 2026-01-01T00:00:00Z)"),
    ({"end_date": "2026-13-45"}, "Invalid end_date format. Use ISO format (e.g., 2026-01-31T23:59:59Z)"),
    ({"limit": "ten"}, "Invalid 'limit' parameter"),
    ({"service_id": "x"}, "Invalid 'service_id' parameter"),
])
def test_bad_filters_are_a_400_naming_the_parameter(admin, params, message):
    answer = admin.get("/v2/audit-logs", params=params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False and body["message"].startswith(message)


def test_the_remediation_action_types_are_accepted_filters(admin, db):
    for name in ("execution_started", "step_completed", "step_failed", "approval_requested", "approved",
                 "rejected", "execution_completed", "execution_failed"):
        assert _log(admin, action_type=name)["total_count"] == 0
    with db.transaction() as tx:
        audit.record(tx, source="remediation", action_type="execution_started", resource="execution",
                     resource_id=41, execution_id=41, service_id=3, who=audit.SYSTEM,
                     details={"playbook_name": "restart"})
    [entry] = _log(admin, execution_id=41)["entries"]
    assert (entry["action_type"], entry["execution_id"], entry["details"]) == (
        "execution_started", 41, {"playbook_name": "restart"})


def test_csv_export_has_the_same_filters_and_paging_headers(admin):
    _register(admin, "billing")
    admin.post("/service/billing", json={"muted": 1}, headers={"X-Actor": "=HYPERLINK(\"x\")"})
    admin.post("/service/billing", json={"muted": 0})
    answer = admin.get("/v2/audit-logs", params={"heartbeat_name": "billing", "limit": 2},
                       headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == "attachment; filename=audit_logs.csv"
    assert (answer.headers["x-total-count"], answer.headers["x-limit"], answer.headers["x-offset"],
            answer.headers["x-has-more"]) == ("3", "2", "0", "true")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["action_type"] for r in rows] == ["unmute", "mute"]
    assert rows[1]["actor"] == "'=HYPERLINK(\"x\")"  # never a formula in a spreadsheet
    assert '"muted": true' in rows[1]["after"]


def test_a_read_key_may_query_over_http_and_grpc(admin, stack):
    _register(admin, "billing")
    read_key = admin.post("/v2/api-keys", json={"name": "reader", "scopes": ["read"]}).json()["results"]["key"]
    reader = HttpClient(admin.url, read_key)
    try:
        assert reader.get("/v2/audit-logs").status_code == 200
    finally:
        reader.session.close()
    with grpc.insecure_channel(f"127.0.0.1:{stack.servers['heartbeat'].port}") as channel:
        stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
        answer = stub.ListAuditEvents(heartbeat_pb2.ListAuditEventsRequest(heartbeat_name="billing"),
                                      metadata=bearer(read_key))
        assert [e.action_type for e in answer.events] == ["register"] and answer.total_count == 1
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListAuditEvents(heartbeat_pb2.ListAuditEventsRequest(action_type="nope"),
                                 metadata=bearer(read_key))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "action_type" in refused.value.details()


def test_an_offset_past_the_contract_limit_is_a_400(admin):
    answer = admin.get("/v2/audit-logs", params={"offset": 9223372036854775806})
    assert answer.status_code == 400 and "offset" in answer.json()["message"]
