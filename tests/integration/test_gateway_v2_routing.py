"""/v2/teams and /v2/notification-targets through the gateway to a real routing service."""
from __future__ import annotations

import dataclasses

import pytest

from medic.authz import KeyAuthorizer
from medic.server import create_server
from services.routing import app as routing_app
from tests.support.http import HttpClient
from tests.support.stack import start_gateway


def service_id(http, name="web", team=None) -> int:
    body = {"heartbeat_name": name, "service_name": name, "alert_interval": 1}
    if team:
        body["team"] = team
    return http.post("/service", json=body).json()["results"][0]["service_id"]


def test_team_lifecycle_over_http(http):
    created = http.post("/v2/teams", json={"name": "payments", "slack_channel_id": "CPAY"})
    assert created.status_code == 201, created.text
    team = created.json()["results"]
    assert team["name"] == "payments" and team["slack_channel_id"] == "CPAY" and team["team_id"] > 0
    assert created.json()["message"] == "Team created."

    duplicate = http.post("/v2/teams", json={"name": "PAYMENTS"})
    assert duplicate.status_code == 409 and duplicate.json()["success"] is False

    listed = http.get("/v2/teams").json()["results"]
    assert [t["name"] for t in listed] == ["payments"]

    renamed = http.patch(f"/v2/teams/{team['team_id']}", json={"name": "billing", "slack_channel_id": ""})
    assert renamed.status_code == 200
    assert renamed.json()["results"]["name"] == "billing" and renamed.json()["results"]["slack_channel_id"] == ""

    assert http.delete(f"/v2/teams/{team['team_id']}").status_code == 200
    assert http.get(f"/v2/teams/{team['team_id']}").status_code == 404
    assert http.delete(f"/v2/teams/{team['team_id']}").status_code == 404


def test_notification_targets_over_http(http):
    sid = service_id(http)
    slack = http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "slack", "config": {"channel_id": "C1"}, "priority": 2})
    assert slack.status_code == 201, slack.text
    hook = http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "webhook", "enabled": False,
        "config": {"url": "https://hooks.example.com/medic", "headers": {"X-Token": "t"}}})
    assert hook.status_code == 201, hook.text
    target = slack.json()["results"]
    assert target["type"] == "slack" and target["config"] == {"channel_id": "C1"} and target["enabled"] is True

    listed = http.get("/v2/notification-targets", params={"service_id": sid}).json()["results"]
    assert {t["type"] for t in listed} == {"slack", "webhook"}
    assert http.get("/v2/notification-targets", params={"service_id": sid + 1}).json()["results"] == []

    updated = http.patch(f"/v2/notification-targets/{target['target_id']}", json={"enabled": False})
    assert updated.status_code == 200 and updated.json()["results"]["enabled"] is False
    assert http.delete(f"/v2/notification-targets/{target['target_id']}").status_code == 200
    assert len(http.get("/v2/notification-targets").json()["results"]) == 1


def test_bad_target_input_names_the_field(http):
    sid = service_id(http)
    cases = [
        ({"service_id": sid, "type": "slack", "config": {}}, "channel_id"),
        ({"service_id": sid, "type": "pagerduty", "config": {"key": "x"}}, "routing_key"),
        ({"service_id": sid, "type": "webhook", "config": {"url": "ftp://x"}}, "url"),
        ({"service_id": sid, "type": "sms", "config": {}}, "type"),
        ({"service_id": "one", "type": "slack", "config": {"channel_id": "C"}}, "service_id"),
        ({"service_id": sid, "type": "slack", "config": "C1"}, "config"),
        ({"service_id": sid, "type": "slack", "config": {"channel_id": "C"}, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = http.post("/v2/notification-targets", json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json()["message"], (body, response.json())
    assert http.patch("/v2/notification-targets/1", json={"target_id": 2}).status_code == 400
    assert http.post("/v2/notification-targets", data=b"{oops").status_code == 400


def test_deleting_a_service_removes_its_targets_and_a_team_keeps_its_services(http, db):
    team = http.post("/v2/teams", json={"name": "ops"}).json()["results"]
    sid = service_id(http, "api", team="ops")
    db.execute("UPDATE services SET team_id = %s WHERE service_id = %s", (team["team_id"], sid))
    http.post("/v2/notification-targets", json={"service_id": sid, "type": "slack",
                                                 "config": {"channel_id": "C1"}})
    http.delete(f"/v2/teams/{team['team_id']}")
    assert db.one("SELECT team_id FROM services WHERE service_id = %s", (sid,)) == {"team_id": None}
    db.execute("DELETE FROM services WHERE service_id = %s", (sid,))
    assert http.get("/v2/notification-targets").json()["results"] == []


def test_service_history_and_deletion_over_v2(http, db):
    sid = service_id(http)
    other = service_id(http, "other")
    http.post("/heartbeat", json={"heartbeat_name": "other", "status": "UP"})
    http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"})
    http.post("/heartbeat", json={"heartbeat_name": "web", "status": "FAILED"})
    history = http.get(f"/v2/services/{sid}/transitions").json()["results"]
    assert [(t["reason"], t["to_state"]) for t in history] == [
        ("reported_failure", "down"), ("first_heartbeat", "up")]
    alerts = http.get("/alerts", params={"active": 1}).json()["results"]
    assert [a["reason"] for a in alerts] == ["reported_failure"]
    assert db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s", (sid,)) == {"n": 2}
    assert http.delete(f"/v2/services/{sid}").status_code == 200
    assert http.get("/service/web").json()["results"] == []  # the legacy answer for an unknown name
    assert http.delete(f"/v2/services/{sid}").status_code == 404
    # Its heartbeats went with it (no foreign key cascades them: the store deletes
    # them); another service's stayed.
    assert db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s", (sid,)) == {"n": 0}
    assert db.one("SELECT count(*) AS n FROM heartbeat_events WHERE service_id = %s", (other,)) == {"n": 1}


def test_team_id_links_a_service_to_a_team(http):
    team = http.post("/v2/teams", json={"name": "ops"}).json()["results"]
    created = http.post("/service", json={"heartbeat_name": "api", "service_name": "api",
                                          "alert_interval": 1, "team_id": team["team_id"]})
    assert created.json()["results"][0]["team_id"] == team["team_id"]
    missing = http.post("/service/api", json={"team_id": 999999})
    assert missing.status_code == 400 and "team_id 999999 does not exist" in missing.json()["message"]
    http.delete(f"/v2/teams/{team['team_id']}")
    assert http.get("/service/api").json()["results"][0]["team_id"] is None


@pytest.fixture
def strict_http(stack):
    """A gateway in front of a routing service without MEDIC_WEBHOOK_ALLOW_PRIVATE
    (the stack's own allows loopback webhooks)."""
    settings = dataclasses.replace(stack.settings, webhook_allow_private=False)
    routing = create_server(routing_app.build(settings), port=0, workers=4,
                            authorizer=KeyAuthorizer(settings))
    gateway = start_gateway(stack, routing_target=f"127.0.0.1:{routing.port}")
    client = HttpClient(gateway.url, stack.admin_key)
    yield client
    client.session.close()
    gateway.stop()
    routing.stop(1)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://127.0.0.1:8080/hook",
                                 "http://10.1.2.3/hook?token=s3cret", "https://hooks.invalid/"])
def test_webhook_target_to_a_private_or_unresolvable_destination_is_400_naming_config_url(
        strict_http, url):
    sid = service_id(strict_http)
    response = strict_http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "webhook", "config": {"url": url}})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert "config.url refused" in message and "s3cret" not in message
    slack = strict_http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "slack", "config": {"channel_id": "C1"}}).json()["results"]
    changed = strict_http.patch(f"/v2/notification-targets/{slack['target_id']}",
                                json={"type": "webhook", "config": {"url": url}})
    assert changed.status_code == 400 and "config.url refused" in changed.json()["message"]
    public = strict_http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "webhook", "config": {"url": "https://93.184.216.34/hook"}})
    assert public.status_code == 201, public.text
