"""Schemathesis against ``medic up``: the OpenAPI document and the gateway agree.

Every check runs (server errors, status codes, content types, headers, response
schemas, valid data accepted and invalid data refused, undeclared methods,
missing authentication, use after delete...), on every operation but
``DELETE /v2/api-keys/{key_id}`` (the run would revoke its own key) and the two
remediation routes authenticated by a secret instead of a key (the playbook
webhook trigger and Slack's signed interactions: tests/integration/
test_remediation_approvals.py sends them as their callers do), with a key
of its own whose rate limits are raised. Exceptions to "valid data is
accepted", for rules no schema can state, are listed in schemathesis.toml.
Legacy updates go to a service registered for the run, and a job signal that
ignores a body which is not JSON is not "invalid data accepted"
(schemathesis_hooks.py says why).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.system import start_medic

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
MIN_TEST_CASES = 2000
RAISED = 10_000_000  # requests a minute, the most a key may be given


@pytest.fixture
def medic_for_fuzzing(tmp_path, database_url):
    medic = start_medic(tmp_path, database_url)
    yield medic
    medic.stop()


def _fuzz_key(medic) -> tuple[str, str]:
    response = requests.post(f"{medic.gateway_url}/v2/api-keys", headers=medic.auth_header, timeout=10, json={
        "name": "schemathesis", "scopes": ["admin"],
        "rate_limits": {"heartbeat_per_minute": RAISED, "management_per_minute": RAISED}})
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    return results["api_key"]["key_id"], results["key"]


def _update_target(medic) -> dict:
    response = requests.post(f"{medic.gateway_url}/service", headers=medic.auth_header, timeout=10, json={
        "heartbeat_name": "fuzzed-updates", "service_name": "fuzzed-updates", "alert_interval": 60})
    assert response.status_code == 201, response.text
    return response.json()["results"][0]


@pytest.mark.timeout(400)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(medic_for_fuzzing, tmp_path):
    medic = medic_for_fuzzing
    key_id, key = _fuzz_key(medic)
    target = _update_target(medic)
    report = tmp_path / "schemathesis.json"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks", "MEDIC_FUZZ_KEY_ID": key_id,
           "MEDIC_FUZZ_SERVICE_NAME": target["heartbeat_name"], "MEDIC_FUZZ_SERVICE_ID": str(target["service_id"]),
           "PYTHONPATH": str(HERE.parents[1])}
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run",
         f"{medic.gateway_url}/docs/openapi.json", "--header", f"Authorization: Bearer {key}",
         "--checks", "all", "--exclude-name", "DELETE /v2/api-keys/{key_id}",
         "--exclude-name", "POST /v2/webhooks/playbooks/{playbook_id}/trigger",
         "--exclude-name", "POST /v2/slack/interactions",
         "--max-examples", "40", "--workers", "1", "--seed", "20261206", "--no-shrink",
         "--generation-database", "none", "--request-timeout", "10", "--no-color",
         "--report", "json", "--report-json-path", str(report)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=360)
    output = run.stdout[-20000:] + run.stderr[-5000:]
    summary = json.loads(report.read_text())

    assert summary["failures"] == [], output
    assert summary["errors"] == [], output
    assert run.returncode == 0, output
    assert summary["operations"]["tested"] == summary["operations"]["total"] - 3, output
    assert summary["test_cases"]["generated"] >= MIN_TEST_CASES, output
    # Success paths were exercised, not only refusals.
    accepted = {label for label, phases in summary["valid_rates"].items()
                if any(rate["accepted"] for rate in phases.values())}
    assert len(accepted) >= 20, (sorted(accepted), output)

    # The run kept its own key usable with its raised limits.
    keys = requests.get(f"{medic.gateway_url}/v2/api-keys", headers={"Authorization": f"Bearer {key}"},
                        timeout=10).json()["results"]
    own = next(k for k in keys if k["key_id"] == key_id)
    assert own["revoked_at"] is None
    assert own["rate_limits"] == {"heartbeat_per_minute": RAISED, "management_per_minute": RAISED}
    # Updates reached the registered service (and valid ones were applied).
    assert "POST /service/{heartbeat_name}" in accepted
    [updated] = requests.get(f"{medic.gateway_url}/service/{target['heartbeat_name']}", headers=medic.auth_header,
                             timeout=10).json()["results"]
    assert updated["date_modified"] != target["date_modified"]
