"""Field limits and paging through the gateway and the real services.

Integers outside a field's range are refused with 400 in the envelope (404 for
an id in the path), never a 500; the same limits hold over gRPC as
INVALID_ARGUMENT. Lists that answer a page at a time say when more follow.
"""
from __future__ import annotations

import grpc
import pytest

from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc
from tests.support.auth import bearer

INT64_PAST_MAX = 2**63
INT32_PAST_MAX = 2**31


def _refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["results"] == ""
    for word in words:
        assert word in body["message"], body["message"]


def _key_id(key: str) -> str:
    return key.split("_")[1]


def test_path_ids_outside_their_range_are_not_found(http):
    _refused(http.delete(f"/v2/teams/{INT64_PAST_MAX}"), 404, str(INT64_PAST_MAX))
    _refused(http.get(f"/v2/teams/{INT64_PAST_MAX}"), 404)
    _refused(http.patch("/v2/teams/0", json={"name": "x"}), 404)  # team ids start at 1
    _refused(http.post(f"/v2/deliveries/{INT64_PAST_MAX}/retry"), 404)
    _refused(http.get(f"/v2/services/{INT64_PAST_MAX}/transitions"), 404)


def test_body_and_query_integers_outside_their_range_are_refused(http, stack):
    key_id = _key_id(stack.admin_key)
    _refused(http.request("PUT", f"/v2/api-keys/{key_id}/rate-limits", json={"heartbeat_per_minute": INT32_PAST_MAX}),
             400, "heartbeat_per_minute", "10000000")
    _refused(http.request("PUT", f"/v2/api-keys/{key_id}/rate-limits", json={"management_per_minute": -1}),
             400, "management_per_minute")
    _refused(http.get("/v2/deliveries", params={"service_id": INT64_PAST_MAX}), 400, "service_id")
    _refused(http.get("/v2/deliveries", params={"limit": 1001}), 400, "limit")
    sid = http.post("/service", json={"heartbeat_name": "web", "service_name": "web",
                                      "alert_interval": 1}).json()["results"][0]["service_id"]
    _refused(http.get(f"/v2/services/{sid}/transitions", params={"limit": -1}), 400, "limit")
    _refused(http.get(f"/v2/services/{sid}/transitions", params={"offset": INT32_PAST_MAX}), 400, "offset")
    _refused(http.post("/v2/notification-targets", json={
        "service_id": INT64_PAST_MAX, "type": "slack", "config": {"channel_id": "C1"}}), 400, "service_id")
    _refused(http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "slack", "config": {"channel_id": "C1"}, "priority": INT32_PAST_MAX}),
        400, "priority")
    # The key kept its limits: nothing out of range was stored.
    own = next(k for k in http.get("/v2/api-keys").json()["results"] if k["key_id"] == key_id)
    assert own["rate_limits"]["heartbeat_per_minute"] is None


@pytest.fixture
def heartbeat_stub(stack):
    channel = grpc.insecure_channel(stack.settings.heartbeat_target)
    yield heartbeat_pb2_grpc.HeartbeatServiceStub(channel), bearer(stack.admin_key)
    channel.close()


def _invalid(stub, method: str, request, field: str) -> None:
    stub, metadata = stub
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, method)(request, metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field in caught.value.details()


def test_domain_ranges_are_refused_over_grpc_before_the_database(heartbeat_stub):
    register, (stub, metadata) = "RegisterService", heartbeat_stub
    base = dict(heartbeat_name="job", service_name="job", alert_interval_seconds=60)
    too_long = {"alert_interval_seconds": 31_536_001, "grace_period_seconds": 2**31 - 1}
    for field, value in too_long.items():
        _invalid(heartbeat_stub, register, heartbeat_pb2.RegisterServiceRequest(**{**base, field: value}), field)
    _invalid(heartbeat_stub, register, heartbeat_pb2.RegisterServiceRequest(**{**base, "threshold": 1001}), "threshold")
    _invalid(heartbeat_stub, register, heartbeat_pb2.RegisterServiceRequest(**{**base, "heartbeat_name": "a\x00b"}),
             "heartbeat_name")
    _invalid(heartbeat_stub, "UpdateService",
             heartbeat_pb2.UpdateServiceRequest(heartbeat_name="job", threshold=2**31 - 1), "threshold")
    _invalid(heartbeat_stub, "ListAlerts", heartbeat_pb2.ListAlertsRequest(offset=-1), "offset")
    # Inside the ranges the same requests succeed.
    created = stub.RegisterService(heartbeat_pb2.RegisterServiceRequest(
        **{**base, "alert_interval_seconds": 31_536_000, "grace_period_seconds": 31_536_000, "threshold": 1000}),
        metadata=metadata, timeout=10)
    assert created.created and created.service.threshold == 1000


def _raise_limits(http, stack) -> None:
    response = http.request("PUT", f"/v2/api-keys/{_key_id(stack.admin_key)}/rate-limits",
                            json={"management_per_minute": 10_000_000})
    assert response.status_code == 200, response.text


def test_an_empty_number_in_the_query_is_refused_not_ignored(http):
    """The document says integer (or one of an enum): an empty value is none of them."""
    _refused(http.get("/v2/webhooks", params={"service_id": ""}), 400, "service_id")
    _refused(http.get("/v2/deliveries", params={"status": ""}), 400, "status")
    _refused(http.get("/v2/deliveries", params={"limit": " 5"}), 400, "limit")
    _refused(http.get("/alerts", params={"offset": ""}), 400, "offset")
    _refused(http.get("/heartbeat", params={"offset": "١"}), 400, "offset")  # an Arabic-Indic 1
    assert http.get("/v2/deliveries", params={"service_id": "0", "limit": "-0"}).status_code == 200


def test_alerts_past_the_default_page_are_announced_and_reachable(http, stack):
    _raise_limits(http, stack)
    for n in range(101):
        name = f"svc-{n:03d}"
        assert http.post("/service", json={"heartbeat_name": name, "service_name": name,
                                           "alert_interval": 1}).status_code == 201
        assert http.post(f"/service/{name}", json={"down": 1}).status_code == 200

    first = http.get("/alerts")
    assert first.status_code == 200
    assert len(first.json()["results"]) == 100  # the original's default page
    link = first.headers["Link"]
    assert link == '</alerts?offset=100>; rel="next"'
    rest = http.get(link[1:link.index(">")])
    assert [a["heartbeat_name"] for a in rest.json()["results"]] == ["svc-000"]
    assert "Link" not in rest.headers

    page = http.get("/alerts", params={"active": 1, "limit": 40, "offset": 80})
    assert len(page.json()["results"]) == 21 and "Link" not in page.headers
    page = http.get("/alerts", params={"active": 1, "limit": 40})
    assert len(page.json()["results"]) == 40
    assert page.headers["Link"] == '</alerts?active=1&limit=40&offset=40>; rel="next"'
    _refused(http.get("/alerts", params={"limit": 1001}), 400, "limit")
    _refused(http.get("/alerts", params={"offset": -1}), 400, "offset")


def test_v2_lists_page_with_a_next_link(http):
    http.post("/service", json={"heartbeat_name": "flappy", "service_name": "flappy", "alert_interval": 1})
    for down in (1, 0, 1, 0):
        assert http.post("/service/flappy", json={"down": down}).status_code == 200
    sid = http.get("/service/flappy").json()["results"][0]["service_id"]
    everything = http.get(f"/v2/services/{sid}/transitions").json()["results"]
    assert len(everything) >= 4

    seen, path = [], f"/v2/services/{sid}/transitions?limit=3"
    while path:
        page = http.get(path)
        assert page.status_code == 200
        seen += page.json()["results"]
        link = page.headers.get("Link")
        path = link[1:link.index(">")] if link else None
    assert seen == everything

    deliveries = http.get("/v2/deliveries", params={"limit": 1})
    assert deliveries.status_code == 200 and "Link" not in deliveries.headers  # nothing was delivered


def test_heartbeat_listing_pages_too(http, stack):
    http.post("/service", json={"heartbeat_name": "beat", "service_name": "beat", "alert_interval": 1})
    for _ in range(3):
        assert http.post("/heartbeat", json={"heartbeat_name": "beat", "status": "UP"}).status_code == 201
    page = http.get("/heartbeat", params={"maxCount": 2})
    assert len(page.json()["results"]) == 2
    assert page.headers["Link"] == '</heartbeat?maxCount=2&offset=2>; rel="next"'
    last = http.get("/heartbeat", params={"maxCount": 2, "offset": 2})
    assert len(last.json()["results"]) == 1 and "Link" not in last.headers


def test_method_not_allowed_lists_the_allowed_methods(http):
    response = http.request("PUT", "/v2/teams")
    _refused(response, 405, "PUT")
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert http.request("TRACE", "/alerts").headers["Allow"] == "GET, HEAD"
    assert http.request("DELETE", "/service/web").headers["Allow"] == "GET, HEAD, POST"
