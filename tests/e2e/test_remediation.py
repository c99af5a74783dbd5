"""Remediation against `medic up`: a service goes down, its playbook runs
(webhook to a local receiver, wait, condition), the service recovers and the
alert resolves; and an execution survives `kill -9` of the remediation service."""
from __future__ import annotations

import os
import signal

import pytest
import requests

from tests.support.playbooks import restart_playbook
from tests.support.receivers import WebhookReceiver
from tests.support.system import start_medic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

ENV = {"MEDIC_WEBHOOK_ALLOW_PRIVATE": "true", "MEDIC_MONITOR_TICK_SECONDS": "0.2",
       "MEDIC_HANDOFF_POLL_SECONDS": "0.1", "MEDIC_REMEDIATION_CONDITION_POLL_SECONDS": "0.2"}


class Api:
    def __init__(self, medic):
        self.url = medic.gateway_url
        self.session = requests.Session()
        self.session.headers.update(medic.auth_header)

    def __call__(self, method: str, path: str, expect=(200, 201), **kw):
        response = self.session.request(method, self.url + path, timeout=10, **kw)
        assert response.status_code in ((expect,) if isinstance(expect, int) else expect), \
            f"{method} {path}: {response.status_code} {response.text}"
        return response.json()["results"] if response.content else None


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook


def test_a_down_service_is_remediated_and_its_alert_resolves(tmp_path, database_url, receiver):
    medic = start_medic(tmp_path, database_url, ENV)
    try:
        # medic up generated the key of the step secrets, readable by its owner only.
        key_file = tmp_path / "data" / "secrets.key"
        assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_text().strip()) == 44
        api = Api(medic)
        api("POST", "/v2/playbooks", json={"yaml": restart_playbook("restart-workers", f"{receiver.url}/restart",
                                                                   "worker-*", """\
  - name: verify
    type: condition
    check: heartbeat_received
    timeout: 30s
""")})
        api("POST", "/service", json={"heartbeat_name": "worker-eu-1", "service_name": "worker-eu-1",
                                      "alert_interval_seconds": 2})
        api("POST", "/service", json={"heartbeat_name": "api-eu-1", "service_name": "api-eu-1",
                                      "alert_interval_seconds": 2})
        api("POST", "/heartbeat", json={"heartbeat_name": "worker-eu-1", "status": "UP"})
        api("POST", "/heartbeat", json={"heartbeat_name": "api-eu-1", "status": "UP"})

        # Both go silent; only the worker matches the playbook's pattern.
        (restart,) = receiver.wait_for(1, timeout=30)
        assert restart.path == "/restart"
        assert restart.json()["service"] == "worker-eu-1"
        (alert,) = [a for a in api("GET", "/alerts", params={"active": "1"}) if a["heartbeat_name"] == "worker-eu-1"]
        assert restart.json()["alert"] == str(alert["alert_id"])
        (execution,) = api("GET", "/v2/executions")
        assert execution["trigger"] == "alert" and execution["alert_id"] == alert["alert_id"]

        # The restart worked: the worker beats again, the condition sees it, the alert resolves.
        wait_for(lambda: api("GET", f"/v2/executions/{execution['execution_id']}")["steps"][2]["status"]
                 == "running", 10, "the condition step")
        api("POST", "/heartbeat", json={"heartbeat_name": "worker-eu-1", "status": "UP"})
        done = wait_for(lambda: (e := api("GET", f"/v2/executions/{execution['execution_id']}"))["status"]
                        in ("completed", "failed") and e, 20, "the execution to end")
        assert done["status"] == "completed", done
        assert [(s["name"], s["status"]) for s in done["steps"]] == [
            ("restart", "completed"), ("settle", "completed"), ("verify", "completed")]
        # Every step is in the execution's event log, in order.
        assert [(e["kind"], e.get("step_index")) for e in done["events"]] == [
            ("execution_started", None), ("step_started", 0), ("step_completed", 0), ("step_started", 1),
            ("step_completed", 1), ("step_started", 2), ("step_completed", 2), ("execution_completed", None)]
        # And the audit log shows every step, in order, as Medic's doing.
        audited = api("GET", "/v2/audit-logs", params={"execution_id": execution["execution_id"]})["entries"]
        assert [(e["action_type"], e["details"].get("step_index"), e["actor"]) for e in reversed(audited)] == [
            ("execution_started", None, "medic"), ("step_completed", 0, "medic"), ("step_completed", 1, "medic"),
            ("step_completed", 2, "medic"), ("execution_completed", None, "medic")]
        assert [e["after"]["step"] for e in reversed(audited) if e["action_type"] == "step_completed"] == [
            "restart", "settle", "verify"]
        wait_for(lambda: not [a for a in api("GET", "/alerts", params={"active": "1"})
                              if a["alert_id"] == alert["alert_id"]], 10, "the alert to resolve")
        # api-eu-1 matched no playbook: it stays down and nothing else ran.
        assert [a["heartbeat_name"] for a in api("GET", "/alerts", params={"active": "1"})] == ["api-eu-1"]
        assert len(api("GET", "/v2/executions")) == 1
        assert len(receiver.requests) == 1
    finally:
        medic.stop()


def test_kill_9_mid_execution_resumes_without_running_a_completed_step_twice(tmp_path, database_url, receiver):
    medic = start_medic(tmp_path, database_url, ENV)
    try:
        api = Api(medic)
        playbook_id = api("POST", "/v2/playbooks", json={"yaml": f"""
name: two-calls
steps:
  - name: first
    type: webhook
    url: {receiver.url}/first
  - name: pause
    type: wait
    duration: 4s
  - name: second
    type: webhook
    url: {receiver.url}/second
"""})["playbook_id"]
        execution_id = api("POST", f"/v2/playbooks/{playbook_id}/execute", json={})["execution_id"]
        receiver.wait_for(1, timeout=10)
        wait_for(lambda: api("GET", f"/v2/executions/{execution_id}")["status"] == "waiting", 10, "the wait")

        os.kill(medic.child_pid("remediation"), signal.SIGKILL)  # mid-wait: `medic up` restarts it

        done = wait_for(lambda: (e := api("GET", f"/v2/executions/{execution_id}", expect=(200, 503)))
                        and e.get("status") in ("completed", "failed") and e, 40, "the execution to end")
        assert done["status"] == "completed", done
        assert [r.path for r in receiver.requests] == ["/first", "/second"]
        assert [s["status"] for s in done["steps"]] == ["completed", "completed", "completed"]
    finally:
        medic.stop()
