"""The legacy routes answer what the original Medic answered (issue 17), through a real
gateway in front of the real stack, auth enforced."""
from __future__ import annotations

import base64

import pytest
import requests

from gateway.legacy import REGISTER_INVALID, UPDATE_INVALID
from medic import contracts
from medic.v1 import heartbeat_pb2
from tests.support.http import HttpClient
from tests.support.stack import start_gateway


def register(http, name="web", **fields):
    response = http.post("/service", json={"heartbeat_name": name, "service_name": name,
                                           "alert_interval": 1, **fields})
    assert response.status_code == 201, response.text
    return response.json()["results"][0]


# --- 1. unknown names ------------------------------------------------------------------

def test_reading_an_unknown_name_lists_nothing(http):
    response = http.get("/service/ghost")
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "", "results": []}


@pytest.mark.parametrize("body", [b'{"muted": 1}', b'{"muted": "yes"}', b"{not json", b""])
def test_updating_an_unknown_name_answers_200_not_located_whatever_the_body(http, body):
    response = http.post("/service/ghost", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {
        "success": False, "results": "",
        "message": "The heartbeat registration specified: ghost was not located. Does it exist?"}


# --- 2. maxCount ------------------------------------------------------------------------

def test_max_count_zero_lists_nothing_and_a_bad_one_falls_back_to_250(http, db):
    service = register(http, "busy")
    db.execute("INSERT INTO heartbeat_events (service_id, time, status) "
               "SELECT %s, now() - n * interval '1 second', 'UP' FROM generate_series(1, 260) n",
               (service["service_id"],))
    counts = {}
    for raw in ("0", "lots", "-5", "1.5", "", "99999999999999999999999", "3"):
        response = http.get("/heartbeat", params={"heartbeat_name": "busy", "maxCount": raw})
        assert response.status_code == 200, (raw, response.text)
        counts[raw] = len(response.json()["results"])
    assert counts == {"0": 0, "lots": 250, "-5": 250, "1.5": 250, "": 250,
                      "99999999999999999999999": 250, "3": 3}


# --- 3. job signals ---------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"{not json", b'{"run_id": 7}', b'{"run_id": "r1", "extra": true}',
                                  b"[1, 2]", b'"text"'])
def test_job_signal_ignores_a_body_it_cannot_use(http, body):
    service_id = register(http, "nightly")["service_id"]
    response = http.post(f"/v2/heartbeat/{service_id}/start", data=body,
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert results["status"] == "STARTED"
    assert results["run_id"] == ("r1" if b'"r1"' in body else None)


def test_job_signal_errors_use_the_original_messages(http):
    service_id = register(http, "nightly")["service_id"]
    missing = http.post("/v2/heartbeat/999/complete")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "message": "Service ID 999 not found.", "results": ""}
    http.post("/service/nightly", json={"active": 0})
    inactive = http.post(f"/v2/heartbeat/{service_id}/fail")
    assert inactive.status_code == 400
    assert inactive.json()["message"] == "Service nightly is inactive."


# --- 4. leniency, normalised -----------------------------------------------------------

@pytest.mark.parametrize("fields, shown", [
    ({"priority": "high"}, {"priority": "p3"}),
    ({"priority": " P1 "}, {"priority": "p1"}),
    ({"alert_interval": 0}, {"alert_interval_seconds": 1}),
    ({"alert_interval": -3}, {"alert_interval_seconds": 1}),
    ({"threshold": 0}, {"threshold": 1}),
    ({"threshold": -2}, {"threshold": 1}),
])
def test_registration_takes_values_the_original_took_and_stores_the_nearest_one(http, fields, shown):
    response = http.post("/service", json={"heartbeat_name": "web", "service_name": "web",
                                           "alert_interval": 1, **fields})
    assert response.status_code == 201, response.text
    service = response.json()["results"][0]
    assert {k: service[k] for k in shown} == shown


@pytest.mark.parametrize("fields, shown", [
    ({"muted": 2}, {"muted": 1}),
    ({"muted": 0}, {"muted": 0}),
    ({"active": 2}, {"active": 1}),
    ({"active": -1}, {"active": 1}),
    ({"down": 3}, {"down": 1}),
    ({"alert_interval": 0}, {"alert_interval_seconds": 1}),
    ({"alert_interval": 0.001}, {"alert_interval_seconds": 1}),
    ({"threshold": 0}, {"threshold": 1}),
    ({"priority": "urgent"}, {"priority": "p3"}),
])
def test_update_takes_values_the_original_took_and_stores_the_nearest_one(http, fields, shown):
    register(http, "web", priority="p1")
    response = http.post("/service/web", json=fields)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Successfully posted update"
    service = http.get("/service/web").json()["results"][0]
    assert {k: service[k] for k in shown} == shown


def test_a_blank_status_is_a_sign_of_life_recorded_as_up(http):
    register(http, "web")
    for status in ("", "   "):
        response = http.post("/heartbeat", json={"heartbeat_name": "web", "status": status})
        assert response.status_code == 201, response.text
    beats = http.get("/heartbeat", params={"heartbeat_name": "web"}).json()["results"]
    assert [b["status"] for b in beats] == ["UP", "UP"]
    assert http.get("/service/web").json()["results"][0]["state"] == "up"


@pytest.mark.parametrize("path", ["/service?active=2", "/service?active=-1", "/alerts?active=2",
                                  "/alerts?active=99999999999999999999999"])
def test_any_integer_active_filter_means_active(http, path):
    register(http, "on")
    register(http, "off")
    http.post("/service/off", json={"active": 0})
    response = http.get(path)
    assert response.status_code == 200, response.text
    if path.startswith("/service"):
        assert [s["heartbeat_name"] for s in response.json()["results"]] == ["on"]


LEGACY_FIELD_ERRORS = [
    # (path, body, the field named, the original's generic text)
    ("/service", {"heartbeat_name": "x", "service_name": "x", "alert_interval": "5"},
     "alert_interval", REGISTER_INVALID),
    ("/service", {"heartbeat_name": "x", "service_name": "x", "alert_interval": 99999999999},
     "alert_interval", REGISTER_INVALID),
    ("/service", {"heartbeat_name": "x", "service_name": "x"}, "alert_interval", REGISTER_INVALID),
    ("/service", {"heartbeat_name": "x", "service_name": 5, "alert_interval": 1}, "service_name",
     REGISTER_INVALID),
    ("/service/web", {"alert_interval": 1e12}, "alert_interval", UPDATE_INVALID),
    ("/service/web", {"alert_interval": "soon"}, "alert_interval", UPDATE_INVALID),
    ("/service/web", {"muted": "yes"}, "muted", UPDATE_INVALID),
    ("/service/web", {"threshold": 1.5}, "threshold", UPDATE_INVALID),
]


@pytest.mark.parametrize("path, body, field, generic", LEGACY_FIELD_ERRORS)
def test_an_error_names_the_legacy_field_the_client_sent(http, path, body, field, generic):
    register(http, "web")
    response = http.post(path, json=body)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith(generic) and f"`{field}`" in message
    assert "alert_interval_seconds" not in message


# --- 18.1 on the legacy routes: integers beyond their field's range ---------------------

OUT_OF_RANGE = [
    ("/service", {"grace_period_seconds": 2147483648}, "grace_period_seconds"),
    ("/service", {"alert_interval_seconds": 99999999999999}, "alert_interval_seconds"),
    ("/service", {"threshold": 2**31}, "threshold"),
    ("/service", {"team_id": 2**63}, "team_id"),
    ("/service", {"team_id": 10**30}, "team_id"),  # beyond 64 bits too
    ("/service", {"alert_interval": 10**30}, "alert_interval"),
    ("/service/web", {"threshold": -(2**40)}, "threshold"),
    ("/service/web", {"grace_period_seconds": 2**31}, "grace_period_seconds"),
    ("/service/web", {"team_id": -(2**64)}, "team_id"),
    ("/service/web", {"alert_interval_seconds": 2**31}, "alert_interval_seconds"),
]


@pytest.mark.parametrize("path, fields, field", OUT_OF_RANGE)
def test_an_integer_beyond_its_field_is_a_400_naming_it(http, path, fields, field):
    register(http, "web")
    body = {"heartbeat_name": "x", "service_name": "x", "alert_interval": 1} if path == "/service" else {}
    response = http.post(path, json={**body, **fields})
    assert response.status_code == 400, response.text
    assert f"`{field}`" in response.json()["message"]


def _contract_maximum(name: str) -> int:
    return contracts.field_limits(heartbeat_pb2.RegisterServiceRequest.DESCRIPTOR.fields_by_name[name]).maximum


MAX_SECONDS = _contract_maximum("alert_interval_seconds")
BEYOND_THE_CONTRACT = [
    ("/service", {"alert_interval": MAX_SECONDS // 60 + 1}, "alert_interval"),
    ("/service", {"threshold": _contract_maximum("threshold") + 1}, "threshold"),
    ("/service", {"alert_interval_seconds": MAX_SECONDS + 1}, "alert_interval_seconds"),
    ("/service/web", {"alert_interval": MAX_SECONDS / 60 + 0.5}, "alert_interval"),
    ("/service/web", {"threshold": _contract_maximum("threshold") + 1}, "threshold"),
    ("/service/web", {"grace_period_seconds": _contract_maximum("grace_period_seconds") + 1},
     "grace_period_seconds"),
    ("/service/web", {"muted": 2**31}, "muted"),  # beyond what the original could store
]


@pytest.mark.parametrize("path, fields, field", BEYOND_THE_CONTRACT)
def test_a_value_beyond_the_contract_limit_is_a_400_naming_the_legacy_field(http, path, fields, field):
    """The legacy routes check the contract's upper limits (the ones /v2 and gRPC
    enforce) in the legacy field's own terms: alert_interval in minutes."""
    before = register(http, "web")
    body = {"heartbeat_name": "x", "service_name": "x", "alert_interval": 1} if path == "/service" else {}
    response = http.post(path, json={**body, **fields})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert f"`{field}`" in message
    if field == "alert_interval":
        assert "alert_interval_seconds" not in message and f"{MAX_SECONDS // 60} minutes" in message
    assert http.get("/service/web").json()["results"][0]["date_modified"] == before["date_modified"]
    assert http.get("/service/x").json()["results"] == []


def test_the_contract_limits_themselves_are_accepted(http):
    service = register(http, "web", alert_interval=MAX_SECONDS // 60, threshold=_contract_maximum("threshold"))
    assert (service["alert_interval_seconds"], service["threshold"]) == (MAX_SECONDS, _contract_maximum("threshold"))
    updated = http.post("/service/web", json={"alert_interval": MAX_SECONDS / 60, "muted": 2**31 - 1})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["results"][0]["alert_interval_seconds"], updated.json()["results"][0]["muted"]) == (
        MAX_SECONDS, 1)


def test_heartbeat_paging_keeps_the_legacy_max_count(http, db):
    service = register(http, "busy")
    db.execute("INSERT INTO heartbeat_events (service_id, time, status) "
               "SELECT %s, now() - n * interval '1 second', 'UP' FROM generate_series(1, 260) n",
               (service["service_id"],))
    first = http.get("/heartbeat", params={"heartbeat_name": "busy", "maxCount": "lots"})  # lots: 250
    assert first.status_code == 200 and len(first.json()["results"]) == 250
    link = first.headers["Link"]
    assert link == '</heartbeat?heartbeat_name=busy&maxCount=lots&offset=250>; rel="next"'
    rest = http.get(link[1:link.index(">")])
    assert len(rest.json()["results"]) == 10 and "Link" not in rest.headers
    seen = {b["heartbeat_id"] for b in first.json()["results"] + rest.json()["results"]}
    assert len(seen) == 260
    nothing = http.get("/heartbeat", params={"heartbeat_name": "busy", "maxCount": 0})
    assert nothing.json()["results"] == [] and "Link" not in nothing.headers
    # The offset is a newer parameter, checked strictly, maxCount 0 or not.
    refused = http.get("/heartbeat", params={"maxCount": 0, "offset": -1})
    assert refused.status_code == 400 and "offset" in refused.json()["message"]


def test_a_job_signal_for_an_id_beyond_int64_is_not_found(http):
    for path in ("/v2/heartbeat/9223372036854775808/start", "/v2/heartbeat/99999999999999999999999/fail"):
        response = http.post(path)
        assert response.status_code == 404, response.text
        service_id = path.split("/")[3]
        assert response.json()["message"] == f"Service ID {service_id} not found."


# --- 18.2 names that hold "/" and other characters ----------------------------------------

@pytest.mark.parametrize("name", ["team/job", "a/b/c", "100% done?", "x#y", "släpp 夜間", "a%2Fb"])
def test_any_registered_name_can_be_read_and_updated(http, name):
    from urllib.parse import quote

    service = register(http, name)
    path = "/service/" + quote(name, safe="")
    [read] = http.get(path).json()["results"]
    assert read["service_id"] == service["service_id"] and read["heartbeat_name"] == name
    updated = http.post(path, json={"muted": 1})
    assert updated.status_code == 200 and updated.json()["results"][0]["muted"] == 1
    deleted = http.delete(f"/v2/services/{read['service_id']}")
    assert deleted.status_code == 200
    assert http.get(path).json()["results"] == []


# --- 5. docs and readiness --------------------------------------------------------------

def test_swagger_json_serves_the_openapi_document(http):
    old = requests.get(http.url + "/docs/swagger.json", timeout=10)  # no key, as the original
    assert old.status_code == 200
    assert old.json() == http.get("/docs/openapi.json").json()


# --- 6. keys as HTTP Basic credentials, and the anonymous limit -------------------------------

def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_key_is_accepted_as_basic_credentials(http, gateway, stack):
    register(http, "web")
    key = stack.admin_key
    host = gateway.url.removeprefix("http://")
    # A legacy client whose base URL carries the key: requests sends it as Basic credentials
    # (given a password part: with a user name alone it sends nothing).
    for userinfo in (f"medic:{key}", f"{key}:", f":{key}"):
        in_url = requests.post(f"http://{userinfo}@{host}/heartbeat",
                               json={"heartbeat_name": "web", "status": "UP"}, timeout=10)
        assert in_url.status_code == 201, in_url.text
    for headers in (basic(key, ""), basic("", key), basic("medic", key)):
        response = requests.get(gateway.url + "/service/web", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
    for headers in (basic("mdk_AAAAAAAAAAAA_" + "A" * 43, ""), basic("medic", "wrong"),
                    {"Authorization": "Basic not-base64!"}):
        response = requests.get(gateway.url + "/service/web", headers=headers, timeout=10)
        assert response.status_code == 401, response.text
        assert response.json()["success"] is False


def test_anonymous_heartbeats_have_their_own_per_ip_limit(stack, http):
    register(http, "web")
    gateway = start_gateway(stack, allow_anonymous_heartbeats=True,
                            rate_limit_anonymous_heartbeat_per_minute=2)
    try:
        anonymous = HttpClient(gateway.url)
        codes = [anonymous.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"}).status_code
                 for _ in range(3)]
        assert codes == [201, 201, 429]
        keyed = HttpClient(gateway.url, stack.admin_key)  # keys keep their own limit
        assert keyed.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"}).status_code == 201
    finally:
        gateway.stop()
