"""Step secrets: sealed at rest, substituted into the step, and never in an API
answer, a log line, an execution event or the audit log; key rotation; the CLI's
playbook commands."""
from __future__ import annotations

import base64
import json
import logging
import os
import time

import pytest

from medic.errors import FailedPrecondition
from services.remediation.secrets import Keyring, SecretStore
from tests.integration.test_cli import Run, ok  # noqa: F401  (the medic/admin fixtures' types)
from tests.integration.test_cli import admin  # noqa: F401  (fixtures; medic is in conftest.py)
from tests.support.receivers import Reply, WebhookReceiver

SECRET = "s3cr3t-T0KEN-do-not-leak-7731"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def echoing_receiver():
    """A receiver that echoes the Authorization header it got in its answer (a careless API)."""
    with WebhookReceiver() as hook:
        hook.always(lambda request: Reply(200, {"you_sent": request.header("Authorization")}))
        yield hook


def test_a_secret_reaches_the_receiver_and_nowhere_else(http, db, echoing_receiver, caplog):
    caplog.set_level(logging.DEBUG)
    first = http.request("PUT", "/v2/secrets/RESTART_TOKEN", json={"value": "first-" + SECRET})
    stored = http.request("PUT", "/v2/secrets/RESTART_TOKEN", json={"value": SECRET})  # replaced
    assert first.status_code == stored.status_code == 200, stored.text
    document = f"""
name: with-secret
steps:
  - name: call
    type: webhook
    url: {echoing_receiver.url}/restart?token=${{secrets.RESTART_TOKEN}}
    headers:
      Authorization: Bearer ${{secrets.RESTART_TOKEN}}
    body:
      token: ${{secrets.RESTART_TOKEN}}
"""
    playbook_id = http.post("/v2/playbooks", json={"yaml": document}).json()["results"]["playbook_id"]
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    (request,) = echoing_receiver.wait_for(1)
    assert request.header("Authorization") == f"Bearer {SECRET}"
    assert request.json() == {"token": SECRET} and request.path.endswith(f"token={SECRET}")

    deadline = time.monotonic() + 10
    while http.get(f"/v2/executions/{execution_id}").json()["results"]["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answers = [http.get(f"/v2/executions/{execution_id}"), http.get("/v2/executions"),
               http.get(f"/v2/playbooks/{playbook_id}"), http.get("/v2/playbooks"), http.get("/v2/secrets"),
               http.get(f"/v2/playbooks/{playbook_id}/executions"), stored]
    for answer in answers:
        assert answer.status_code == 200 and SECRET not in answer.text, answer.url
    step = http.get(f"/v2/executions/{execution_id}").json()["results"]["steps"][0]
    assert "***" in step["output"] and "${secrets.RESTART_TOKEN}" in step["output"]  # what it was, not its value
    events = db.all("SELECT kind, actor, detail FROM playbook_execution_events")
    assert events and not any(SECRET in json.dumps(e) for e in events)
    # The audit log has the execution's every step, and no secret in any of its events
    # (a secret put or replaced is recorded as "changed").
    audit_log = http.get("/v2/audit-logs", params={"execution_id": execution_id})
    assert audit_log.status_code == 200 and SECRET not in audit_log.text
    assert [e["action_type"] for e in reversed(audit_log.json()["results"]["entries"])] == [
        "execution_started", "step_completed", "execution_completed"]
    put = http.get("/v2/audit-logs", params={"resource": "secret", "resource_id": "RESTART_TOKEN"}).json()[
        "results"]["entries"]
    assert [(e["action_type"], e["after"]["value"]) for e in reversed(put)] == [("create", "changed"),
                                                                               ("update", "changed")]
    every_event = db.all("SELECT * FROM audit_events")
    assert every_event and not any(SECRET in json.dumps(e, default=str) for e in every_event)
    results = db.all("SELECT output, error FROM playbook_step_results")
    assert not any(SECRET in json.dumps(r) for r in results)
    sealed = db.one("SELECT nonce, ciphertext FROM remediation_secrets")
    assert SECRET.encode() not in bytes(sealed["ciphertext"])
    logged = [r.getMessage() + str(r.args) for r in caplog.records]
    assert logged and not any(SECRET in line for line in logged)
    assert [s["name"] for s in http.get("/v2/secrets").json()["results"]] == ["RESTART_TOKEN"]


def test_a_missing_secret_fails_the_step_without_sending(http, echoing_receiver):
    document = (f"name: missing\nsteps:\n  - name: call\n    type: webhook\n"
                f"    url: {echoing_receiver.url}/x?t=${{secrets.NOPE}}\n")
    playbook_id = http.post("/v2/playbooks", json={"yaml": document}).json()["results"]["playbook_id"]
    execution_id = http.post(f"/v2/playbooks/{playbook_id}/execute", json={}).json()["results"]["execution_id"]
    deadline = time.monotonic() + 10
    while (execution := http.get(f"/v2/executions/{execution_id}").json()["results"])["status"] != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert execution["steps"][0]["error"] == "secret 'NOPE' does not exist"
    assert echoing_receiver.requests == []


def test_rotating_the_key_keeps_every_secret_readable(db):
    old, new = new_key(), new_key()
    SecretStore(db, Keyring(old)).put("A", "alpha")
    SecretStore(db, Keyring(old)).put("B", "beta")
    # The new key is current, the old one still opens what it sealed.
    rotating = SecretStore(db, Keyring(new, previous=old))
    assert rotating.value("A") == "alpha"
    assert rotating.rotate() == 2
    assert rotating.rotate() == 0
    only_new = SecretStore(db, Keyring(new))
    assert (only_new.value("A"), only_new.value("B")) == ("alpha", "beta")
    with pytest.raises(FailedPrecondition):
        SecretStore(db, Keyring(old)).value("A")


def test_medic_secrets_rotate_re_seals_under_the_new_key(db, database_url, medic, monkeypatch):
    old, new = new_key(), new_key()
    SecretStore(db, Keyring(old)).put("TOKEN", "value-1")
    monkeypatch.setenv("MEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("MEDIC_SECRETS_KEY", new)
    monkeypatch.setenv("MEDIC_SECRETS_PREVIOUS_KEYS", old)
    rotated = medic("secrets", "rotate")
    assert rotated.code == 0, rotated.err
    assert "re-sealed 1 secret(s)" in rotated.out
    assert SecretStore(db, Keyring(new)).value("TOKEN") == "value-1"


def test_medic_playbooks_apply_creates_then_updates(admin, tmp_path):
    path = tmp_path / "restart.yaml"
    path.write_text("name: restart\nsteps:\n  - name: pause\n    type: wait\n    duration: 5s\n")
    created = ok(admin("playbooks", "apply", str(path)))
    assert "Playbook 'restart' created" in created.out
    path.write_text("name: restart\napproval: required\nsteps:\n  - name: pause\n    type: wait\n    duration: 9s\n")
    updated = ok(admin("playbooks", "apply", str(path)))
    assert "Playbook 'restart' updated" in updated.out
    listed = ok(admin("--json", "playbooks", "list")).json()
    assert [(p["name"], p["approval"]) for p in listed] == [("restart", "required")]

    path.write_text("name: broken\nsteps:\n  - name: x\n    type: wait\n")
    refused = admin("playbooks", "apply", str(path))
    assert refused.code == 1 and "line 3, steps[0].duration" in refused.err
    checked = admin("playbooks", "validate", str(path))
    assert checked.code == 1 and "line 3, steps[0].duration: `duration` is required" in checked.out


def test_an_alert_field_naming_a_secret_does_not_reach_it(http, echoing_receiver):
    http.request("PUT", "/v2/secrets/RESTART_TOKEN", json={"value": SECRET})
    sid = http.post("/service", json={"heartbeat_name": "sneaky", "service_name": "${secrets.RESTART_TOKEN}",
                                      "alert_interval": 60}).json()["results"][0]["service_id"]
    document = (f"name: names\nsteps:\n  - name: call\n    type: webhook\n    url: {echoing_receiver.url}/x\n"
                f"    body:\n      service: ${{SERVICE_NAME}}\n")
    playbook_id = http.post("/v2/playbooks", json={"yaml": document}).json()["results"]["playbook_id"]
    assert http.post(f"/v2/playbooks/{playbook_id}/execute", json={"service_id": sid}).status_code == 201
    (request,) = echoing_receiver.wait_for(1)
    assert request.json() == {"service": "${secrets.RESTART_TOKEN}"}
