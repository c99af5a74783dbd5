"""Runs ``medic up`` as a real process tree on free ports."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port_block


@dataclass
class MedicUp:
    process: subprocess.Popen
    env: dict[str, str]
    gateway_url: str
    heartbeat_target: str
    output: list[str] = field(default_factory=list)

    @property
    def admin_key(self) -> str:
        return (Path(self.env["MEDIC_DATA_DIR"]) / "admin.key").read_text().strip()

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def child_pid(self, name: str) -> int:
        """PID of the launcher's child running ``medic serve <name>``."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid and b"serve" in cmdline and name.encode() in cmdline:
                return int(entry.name)
        raise LookupError(f"no child process for {name}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def medic_env(tmp_path: Path, database_url: str | None,
              extra_env: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of a `medic up` on free ports, and its ports by name (GATEWAY, AUTH, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    # One block of ports: replica i of a process uses its port + 10*i (gateways + i).
    base = free_port_block(20)
    names = ("AUTH", "HEARTBEAT", "ROUTING", "DELIVERY")
    ports = {"GATEWAY": base, **{name: base + 2 + n for n, name in enumerate(names)}}
    for name, port in ports.items():
        env[f"MEDIC_{name}_PORT"] = str(port)
    for n, name in enumerate(names):
        env[f"MEDIC_{name}_METRICS_PORT"] = str(base + 6 + n)
    env["MEDIC_DATA_DIR"] = str(tmp_path / "data")
    env["MEDIC_LOG_LEVEL"] = "WARNING"
    # Tests post as fast as they can; rate limits have tests of their own.
    env["MEDIC_RATE_LIMIT_HEARTBEAT_PER_MINUTE"] = "1000000"
    env["MEDIC_RATE_LIMIT_MANAGEMENT_PER_MINUTE"] = "1000000"
    if database_url:
        env["MEDIC_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    return env, ports


def start_medic(tmp_path: Path, database_url: str | None, extra_env: dict[str, str] | None = None,
                timeout: float = 90, args: tuple[str, ...] = ()) -> MedicUp:
    env, ports = medic_env(tmp_path, database_url, extra_env)
    process = subprocess.Popen([sys.executable, "-m", "medic_cli", "up", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    medic = MedicUp(process=process, env=env, gateway_url=f"http://127.0.0.1:{ports['GATEWAY']}",
                    heartbeat_target=f"127.0.0.1:{ports['HEARTBEAT']}")

    def pump():
        for line in process.stdout:
            medic.output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            medic.stop()
            raise RuntimeError("medic up did not come up:\n" + "".join(medic.output[-40:]))
        try:
            line = lines.get(timeout=min(remaining, 1))
        except queue.Empty:
            continue
        if "Press Ctrl-C to stop." in line:
            return medic


@pytest.fixture
def medic_up(tmp_path, database_url):
    medic = start_medic(tmp_path, database_url)
    yield medic
    medic.stop()
