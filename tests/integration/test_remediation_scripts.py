"""Script steps run only registered scripts, without a shell or arguments, with a
limited environment, truncated output and a timeout that kills them."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def run(http, steps: str, service_id: int | None = None, timeout: float = 15) -> dict:
    document = f"name: scripted-{time.monotonic_ns()}\nsteps:\n{steps}"
    created = http.post("/v2/playbooks", json={"yaml": document})
    assert created.status_code == 201, created.text
    body = {"service_id": service_id} if service_id else {}
    started = http.post(f"/v2/playbooks/{created.json()['results']['playbook_id']}/execute", json=body)
    assert started.status_code == 201, started.text
    deadline = time.monotonic() + timeout
    while True:
        execution = http.get(f"/v2/executions/{started.json()['results']['execution_id']}").json()["results"]
        if execution["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return execution
        time.sleep(0.1)


@pytest.fixture
def scripts(stack) -> Path:
    return Path(stack.settings.remediation_scripts_dir)


def test_alert_fields_reach_a_script_only_as_values_never_as_arguments_or_commands(http, scripts):
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="m"))  # short: the name it goes into holds 255 characters
    script(scripts, "show-input", 'echo "argc=$#"\necho "service=$MEDIC_PARAM_SERVICE"\nenv | sort\n')
    hostile = f"x; touch {tmp_path}/pwned1 $(touch {tmp_path}/pwned2) `touch {tmp_path}/pwned3` --help"
    sid = http.post("/service", json={"heartbeat_name": "hostile", "service_name": hostile,
                                      "alert_interval": 60}).json()["results"][0]["service_id"]
    execution = run(http, "  - name: show\n    type: script\n    script: show-input\n    parameters:\n"
                          "      service: ${SERVICE_NAME}\n", service_id=sid)
    assert execution["status"] == "completed", execution
    output = execution["steps"][0]["output"]
    assert "argc=0" in output and f"service={hostile}" in output
    assert not any((tmp_path / f"pwned{n}").exists() for n in (1, 2, 3))
    env = {line.split("=", 1)[0] for line in output.splitlines()[3:] if "=" in line}
    assert env <= {"PATH", "LANG", "MEDIC_PARAM_SERVICE", "PWD", "SHLVL", "_"}, env
    assert "MEDIC_DATABASE_URL" not in output and "MEDIC_SERVICE_TOKEN" not in output


def test_only_a_registered_script_runs(http, scripts, tmp_path):
    outside = script(tmp_path, "outside", f"touch {tmp_path}/ran\n")
    (scripts / "linked").symlink_to(outside)
    (scripts / "not-executable").write_text("#!/bin/sh\ntouch /tmp/never\n")
    for name, reason in (("rm", "is not registered"), ("linked", "is not registered"),
                         ("not-executable", "is not executable")):
        execution = run(http, f"  - name: try\n    type: script\n    script: {name}\n")
        assert execution["status"] == "failed" and reason in execution["steps"][0]["error"], execution
    assert not (tmp_path / "ran").exists()
    refused = http.post("/v2/playbooks", json={
        "yaml": "name: escape\nsteps:\n  - name: try\n    type: script\n    script: ../../bin/sh\n"})
    assert refused.status_code == 400 and "line 5, steps[0].script" in refused.json()["message"]


def test_a_script_is_killed_at_its_timeout(http, scripts, tmp_path):
    pid_file = tmp_path / "pid"
    script(scripts, "hang", f"echo $$ > {pid_file}\nsleep 60\n")
    started = time.monotonic()
    execution = run(http, "  - name: hang\n    type: script\n    script: hang\n    timeout: 1s\n")
    assert execution["status"] == "failed"
    assert execution["steps"][0]["error"] == "killed after its timeout of 1 s"
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_script_output_is_truncated_at_64_kib(http, scripts):
    script(scripts, "chatty", "printf 'nul:\\000:'\nyes a | head -c 200000\nexit 3\n")
    execution = run(http, "  - name: chatty\n    type: script\n    script: chatty\n")
    step = execution["steps"][0]
    assert execution["status"] == "failed" and step["error"] == "exit code 3"
    assert step["output"].count("a") <= 64 * 1024 and "output truncated at 64 KiB" in step["output"]
