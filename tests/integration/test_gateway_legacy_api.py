"""The legacy HTTP API through a real gateway (uvicorn) and a real heartbeat service."""
from __future__ import annotations

import re
import time

import pytest


def envelope_of(response) -> dict:
    body = response.json()
    assert set(body) >= {"success", "message", "results"}, body
    return body


def test_legacy_client_registers_posts_and_lists_a_heartbeat(http):
    created = http.post("/service", json={"heartbeat_name": "my-app", "service_name": "my-app",
                                          "environment": "staging", "alert_interval": 5,
                                          "team": "platform", "priority": "P2"})
    assert created.status_code == 201
    body = envelope_of(created)
    assert body == {**body, "success": True, "message": "Heartbeat successfully registered."}
    service = body["results"][0]
    assert service["heartbeat_name"] == "staging-my-app"
    assert service["service_id"] > 0 and service["alert_interval"] == 5
    assert service["alert_interval_seconds"] == 300 and service["priority"] == "p2"

    again = http.post("/service", json={"heartbeat_name": "my-app", "service_name": "my-app",
                                        "environment": "staging", "alert_interval": 5})
    assert again.status_code == 200 and again.json()["message"] == "Heartbeat is already registered."

    posted = http.post("/heartbeat", json={"heartbeat_name": "staging-my-app", "status": "UP"})
    assert posted.status_code == 201
    assert posted.json() == {"success": True, "message": "Heartbeat Posted Successfully.", "results": ""}

    listed = http.get("/heartbeat", params={"heartbeat_name": "staging-my-app"})
    assert listed.status_code == 200
    [hb] = listed.json()["results"]
    assert {hb["heartbeat_name"], hb["service_name"], hb["status"], hb["team"], hb["priority"]} == \
        {"staging-my-app", "my-app", "UP", "platform", "p2"}
    assert hb["time"].endswith("Z") and hb["heartbeat_id"] > 0

    one = http.get("/service/STAGING-MY-APP")
    assert one.status_code == 200 and one.json()["results"][0]["state"] == "up"


def test_alert_interval_seconds_overrides_minutes(http):
    response = http.post("/service", json={"heartbeat_name": "fast", "service_name": "fast",
                                           "alert_interval": 5, "alert_interval_seconds": 2})
    assert response.json()["results"][0]["alert_interval_seconds"] == 2
    updated = http.post("/service/fast", json={"alert_interval": 1.5})
    assert updated.status_code == 200 and updated.json()["message"] == "Successfully posted update"
    assert updated.json()["results"][0]["alert_interval_seconds"] == 90


def test_update_mutes_deactivates_and_lists_by_filters(http):
    for name, svc in (("a", "shop"), ("b", "shop"), ("c", "blog")):
        http.post("/service", json={"heartbeat_name": name, "service_name": svc, "alert_interval": 1})
    assert http.post("/service/b", json={"active": 0, "muted": 1}).status_code == 200
    active_shop = http.get("/service", params={"service_name": "shop", "active": 1}).json()["results"]
    assert [s["heartbeat_name"] for s in active_shop] == ["a"]
    b = http.get("/service/b").json()["results"][0]
    assert b["active"] == 0 and b["muted"] == 1 and b["date_muted"]
    inactive = http.post("/heartbeat", json={"heartbeat_name": "b", "status": "UP"})
    assert inactive.status_code == 400
    assert inactive.json()["message"] == "b was located, but is marked inactive. Does this need to be re-enabled?"


def test_job_signals_over_v2(http):
    service_id = http.post("/service", json={"heartbeat_name": "nightly", "service_name": "batch",
                                             "alert_interval": 60}).json()["results"][0]["service_id"]
    start = http.post(f"/v2/heartbeat/{service_id}/start", json={"run_id": "r1"})
    assert start.status_code == 201
    assert start.json()["message"] == "Job signal STARTED recorded successfully."
    assert start.json()["results"] == {"service_id": service_id, "heartbeat_name": "nightly",
                                       "status": "STARTED", "run_id": "r1"}
    assert http.post(f"/v2/heartbeat/{service_id}/complete").status_code == 201
    assert http.post(f"/v2/heartbeat/{service_id}/fail", json={}).json()["results"]["status"] == "FAILED"
    assert http.post("/v2/heartbeat/424242/start").status_code == 404
    statuses = [h["status"] for h in http.get("/heartbeat", params={"heartbeat_name": "nightly"}).json()["results"]]
    assert statuses == ["FAILED", "COMPLETED", "STARTED"]


def test_alerts_are_listed_newest_first(http, db):
    service_id = http.post("/service", json={"heartbeat_name": "web", "service_name": "web",
                                             "alert_interval": 1}).json()["results"][0]["service_id"]
    db.execute("INSERT INTO alerts (service_id, reason, active, closed_at) VALUES (%s, 'missed_heartbeats', false, now())",
               (service_id,))
    db.execute("INSERT INTO alerts (service_id, reason) VALUES (%s, 'reported_failure')", (service_id,))
    alerts = http.get("/alerts").json()["results"]
    assert [a["reason"] for a in alerts] == ["reported_failure", "missed_heartbeats"]
    assert alerts[0]["alert_name"] == "Medic - Heartbeat failure for web" and alerts[0]["active"] == 1
    assert alerts[0]["closed_date"] is None and alerts[1]["closed_date"]
    assert [a["active"] for a in http.get("/alerts", params={"active": 0}).json()["results"]] == [0]


BAD_INPUTS = [
    ("POST", "/heartbeat", b"{not json", 400, "not valid JSON"),
    ("POST", "/heartbeat", b"[1, 2]", 400, "JSON object"),
    ("POST", "/heartbeat", b"", 400, "JSON object is required"),
    ("POST", "/heartbeat", b'{"heartbeat_name": 5, "status": "UP"}', 400, "heartbeat_name"),
    ("POST", "/heartbeat", b'{"heartbeat_name": "web"}', 400, "status"),
    ("POST", "/heartbeat", b'{"heartbeat_name": "web", "status": "' + b"x" * 65 + b'"}', 400, "64"),
    ("POST", "/heartbeat", b'{"heartbeat_name": "ghost", "status": "UP"}', 404,
     "ghost is not listed as a registered service."),
    ("POST", "/heartbeat", b'{"heartbeat_name": "web", "status": "UP", "extra": 1}', 400, "extra"),
    ("POST", "/heartbeat", b'{"heartbeat_name": "w\\u0000b", "status": "UP"}', 400, "NUL"),
    ("POST", "/heartbeat", b'{"heartbeat_name": "web", "status": "U\\u0000P"}', 400, "NUL"),
    ("POST", "/service", b'{"heartbeat_name": "x\\u0000", "service_name": "x", "alert_interval": 1}', 400, "NUL"),
    ("POST", "/service", b'{"heartbeat_name": "x", "service_name": "x"}', 400, "alert_interval"),
    ("POST", "/service", b'{"heartbeat_name": "x", "service_name": "x", "alert_interval": "5"}', 400,
     "alert_interval"),
    ("POST", "/service", b'{"heartbeat_name": "x", "service_name": "x", "alert_interval": true}', 400,
     "alert_interval"),
    ("GET", "/service?active=maybe", None, 400, "active"),
    ("GET", "/alerts?active=yes", None, 400, "active"),
    ("POST", "/service/web", b'{"muted": "yes"}', 400, "`muted`"),
    ("POST", "/service", b'{"heartbeat_name": "x", "service_name": "x", "alert_interval": 1, "priority": 1}',
     400, "`priority`"),
    ("GET", "/no/such/route", None, 404, "No route"),
    ("DELETE", "/heartbeat", None, 405, "not allowed"),
]


@pytest.mark.parametrize("method, path, body, status, text", BAD_INPUTS)
def test_bad_input_gets_a_4xx_with_the_envelope(http, method, path, body, status, text):
    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1})
    response = http.request(method, path, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    payload = envelope_of(response)
    assert payload["success"] is False
    assert text.lower() in payload["message"].lower()


def test_body_over_64_kib_is_refused_with_413(http):
    big = b'{"heartbeat_name": "web", "status": "UP", "pad": "' + b"x" * 70_000 + b'"}'
    response = http.post("/heartbeat", data=big)
    assert response.status_code == 413 and envelope_of(response)["success"] is False

    def chunks():  # no Content-Length: the limit holds while streaming too
        yield b'{"heartbeat_name": "web", "pad": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    streamed = http.post("/heartbeat", data=chunks())
    assert streamed.status_code == 413


def test_request_id_is_echoed_and_generated(http):
    response = http.get("/service", headers={"x-request-id": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    assert len(http.get("/service").headers["x-request-id"]) == 32


def test_health_endpoints_report_dependencies(http):
    assert http.get("/v1/healthcheck/network").status_code == 204
    assert http.get("/health/live").json()["status"] == "alive"
    ready = http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["database"] == "healthy"
    assert ready.json()["services"] == {"auth": "healthy", "heartbeat": "healthy", "routing": "healthy",
                                        "delivery": "healthy", "remediation": "healthy"}
    health = http.get("/health").json()
    assert health["status"] == "healthy" and health["components"]["database"]["status"] == "healthy"


def test_heartbeat_service_down_gives_503_then_recovers(stack, db, http):
    from medic.authz import KeyAuthorizer
    from medic.server import create_server
    from services.heartbeat import app as heartbeat_app

    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1})
    port = stack.servers["heartbeat"].port
    stack.servers["heartbeat"].stop(grace=0)
    down = http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"})
    assert down.status_code == 503 and envelope_of(down)["success"] is False
    ready = http.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["services"]["heartbeat"] == "unreachable"
    assert ready.json()["status"] == "not_ready"  # the original's word

    stack.servers["heartbeat"] = create_server(heartbeat_app.build(stack.settings, db=db), port=port,
                                               authorizer=KeyAuthorizer(stack.settings))
    deadline = time.monotonic() + 15
    while True:
        response = http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"})
        if response.status_code == 201:
            break
        assert response.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.2)
    assert http.get("/health/ready").status_code == 200


def test_metrics_and_docs_are_served(http):
    http.post("/heartbeat", json={"heartbeat_name": "ghost", "status": "UP"})
    metrics = http.get("/metrics")
    assert metrics.status_code == 200 and "medic_http_requests_total" in metrics.text
    assert http.get("/docs").status_code == 200
    assert "swagger" in http.get("/docs/static/swagger-ui-bundle.js").text.lower()[:2000]
    spec = http.get("/docs/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/heartbeat" in spec["paths"]


def test_openapi_documents_exactly_the_routes_served(gateway):
    from starlette.routing import Route

    from gateway.docs import openapi

    app = gateway.server.config.app
    served = set()
    for route in app.routes:
        # /docs/: the same page as /docs; the console (/ and /ui redirect to its pages) is
        # HTML, not API routes.
        if isinstance(route, Route) and route.path != "/docs/" and route.path not in ("/", "/ui"):
            for method in route.methods - {"HEAD"}:
                served.add((re.sub(r":\w+}", "}", route.path), method.lower()))
    documented = {(path, method) for path, ops in openapi()["paths"].items() for method in ops}
    assert served == documented
