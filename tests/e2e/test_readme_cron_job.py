"""The README's "Watching a cron job" recipe, as written there: its registration,
and its crontab line run by a shell script (as cron would run it: SHELL=/bin/bash,
`\\%` read as `%`) against `medic up`, with a webhook receiver standing in for the
people who get the alerts."""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.receivers import WebhookReceiver
from tests.support.system import start_medic

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
JOB = "/usr/local/bin/db-backup.sh"  # the command the README wraps


def section() -> str:
    text = README.read_text()
    return re.search(r"## Watching a cron job\n(.*?)\n## ", text, re.S).group(1)


def registration() -> dict:
    """The JSON body of the README's registration."""
    body = re.search(r"-X POST localhost:8080/service \\\n\s+-d '(.*?)'", section(), re.S).group(1)
    return json.loads(body.replace("\\\n", " "))


def crontab() -> tuple[dict[str, str], str, str]:
    """The README's crontab: its variables, the schedule of the job line and its command."""
    block = re.search(r"```crontab\n(.*?)```", section(), re.S).group(1)
    variables, job = {}, None
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z_]+)=(.*)", line)
        if match:
            variables[match.group(1)] = match.group(2)
        else:
            job = line
    fields = job.split(None, 5)
    return variables, " ".join(fields[:5]), fields[5]


def run_recipe(tmp_path: Path, medic, service_id: int, job_script: str) -> subprocess.CompletedProcess:
    """Writes the crontab line into a shell script as cron would run it, with Medic's
    address and key and the test's job in place of the README's, and runs it."""
    variables, _, command = crontab()
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/bash\n" + job_script)
    job.chmod(0o755)
    variables["MEDIC"] = variables["MEDIC"].replace("http://localhost:8080", medic.gateway_url).replace(
        "/v2/heartbeat/2", f"/v2/heartbeat/{service_id}")
    variables["MEDIC_KEY"] = medic.admin_key
    script = tmp_path / "cron-line.sh"
    script.write_text("#!" + variables.pop("SHELL") + "\n"
                      + "".join(f"export {name}={json.dumps(value)}\n" for name, value in variables.items())
                      + command.replace("\\%", "%").replace(JOB, str(job)) + "\n")
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)


def get(medic, path: str, **params):
    response = requests.get(medic.gateway_url + path, headers=medic.auth_header, params=params, timeout=10)
    response.raise_for_status()
    return response.json()["results"]


def register(medic, **overrides) -> dict:
    response = requests.post(medic.gateway_url + "/service", headers=medic.auth_header, timeout=10,
                             json={**registration(), **overrides})
    assert response.status_code == 201, response.text
    return response.json()["results"][0]


def test_the_readme_recipe_registers_a_schedule_and_wraps_the_job_with_curl_only():
    body = registration()
    assert {"schedule", "timezone", "grace_period_seconds", "max_duration_seconds"} <= set(body)
    variables, schedule, command = crontab()
    assert schedule == body["schedule"] and variables["SHELL"] == "/bin/bash"
    assert JOB in command and "/start" in command and "complete" in command and "fail" in command
    # curl is the only program it needs besides the shell and coreutils (date, tail).
    assert command.count("curl ") == 2
    assert not re.search(r"\b(jq|python3?|perl|wget|node|ruby|sed|awk)\b", command)


def test_the_recipe_against_medic_up(tmp_path, database_url):
    with WebhookReceiver() as receiver:
        medic = start_medic(tmp_path, database_url, {"MEDIC_WEBHOOK_ALLOW_PRIVATE": "true"})
        try:
            _exercise(tmp_path, medic, receiver)
        finally:
            medic.stop()


def _exercise(tmp_path: Path, medic, receiver) -> None:
    requests.post(medic.gateway_url + "/v2/webhooks", headers=medic.auth_header, timeout=10,
                  json={"url": receiver.url + "/medic"}).raise_for_status()
    # A job that never starts: every minute, two seconds of grace.
    silent = register(medic, heartbeat_name="never-starts", schedule="* * * * *", timezone="UTC",
                      grace_period_seconds=2)
    silent_due = dt.datetime.fromisoformat(silent["deadline_at"].replace("Z", "+00:00"))
    assert silent_due.second == 2 and silent_due.microsecond == 0

    job = register(medic)
    assert (job["schedule"], job["timezone"]) == (registration()["schedule"], registration()["timezone"])

    # A job that succeeds: its run appears with its duration and exit code.
    done = run_recipe(tmp_path, medic, job["service_id"], "echo copying\nsleep 1\necho copied 3 files\nexit 0\n")
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = get(medic, f"/v2/services/{job['service_id']}/runs")
    assert run["status"] == "completed" and run["duration_ms"] >= 1000
    assert run["message"] == "exit code 0\ncopying\ncopied 3 files\n"
    assert get(medic, f"/service/{job['heartbeat_name']}")[0]["state"] == "up"

    # A job that fails: the alert's webhook carries its output.
    failed = run_recipe(tmp_path, medic, job["service_id"],
                        "echo 'pg_dump: error: connection to server failed' >&2\nexit 3\n")
    assert failed.returncode == 0, failed.stdout + failed.stderr
    runs = get(medic, f"/v2/services/{job['service_id']}/runs")
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert runs[0]["message"] == "exit code 3\npg_dump: error: connection to server failed\n"
    payload = _webhook(receiver, lambda body: body["service"]["heartbeat_name"] == job["heartbeat_name"])
    assert payload["type"] == "alert.triggered" and payload["alert"]["reason"] == "reported_failure"
    assert payload["run"]["status"] == "failed"
    assert payload["run"]["output"] == "exit code 3\npg_dump: error: connection to server failed\n"

    # The job that never started alerts at its schedule plus grace.
    alert = _webhook(receiver, lambda body: body["service"]["heartbeat_name"] == "never-starts", timeout=90)
    assert alert["alert"]["reason"] == "missed_heartbeats"
    opened = dt.datetime.fromisoformat(alert["alert"]["opened_at"].replace("Z", "+00:00"))
    assert silent_due <= opened <= silent_due + dt.timedelta(seconds=2), (silent_due, opened)


def _webhook(receiver, matches, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in receiver.requests:
            body = request.json()
            if matches(body):
                return body
        time.sleep(0.2)
    raise AssertionError(f"no matching webhook in {timeout} s: {[r.json() for r in receiver.requests]}")
