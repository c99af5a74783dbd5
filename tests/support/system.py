"""The whole system as real processes on free loopback ports: ``medic up`` as
one process tree (``start_medic``), or each ``medic serve <process>`` on its own,
startable, stoppable and killable by a test (``System``)."""
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

import requests
import requests.adapters
import urllib3

from medic import health, migrate
from medic.config import Settings
from medic.db import Database
from services.auth import bootstrap
from tests.support import processes
from tests.support.ports import free_port, free_port_block

GRPC = ("auth", "heartbeat", "routing", "delivery", "monitor", "remediation")


@dataclass
class Process:
    name: str
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None


@dataclass
class System:
    database_url: str
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self):
        self.ports = {name: free_port() for name in (*GRPC, "gateway")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
        env.update({"MEDIC_DATABASE_URL": self.database_url, "MEDIC_DATA_DIR": str(self.data_dir),
                    "MEDIC_LOG_LEVEL": "WARNING", "MEDIC_SHUTDOWN_GRACE_SECONDS": "2",
                    # Tests poll the API; rate limits have tests of their own.
                    "MEDIC_RATE_LIMIT_MANAGEMENT_PER_MINUTE": "1000000",
                    "MEDIC_RATE_LIMIT_HEARTBEAT_PER_MINUTE": "1000000",
                    "MEDIC_RATE_LIMIT_CONSOLE_PER_MINUTE": "1000000"})
        for name, port in self.ports.items():
            env[f"MEDIC_{name.upper()}_PORT"] = str(port)
            if name != "gateway":
                env[f"MEDIC_{name.upper()}_METRICS_PORT"] = "0"
        env.update(self.extra_env)
        migrate.migrate(self.database_url)
        settings = Settings(database_url=self.database_url, data_dir=self.data_dir)
        env["MEDIC_SERVICE_TOKEN"] = bootstrap.ensure_service_token(settings)
        db = Database(self.database_url, 1)
        try:
            self.admin_key = bootstrap.bootstrap_admin_key(settings, db) or \
                (self.data_dir / bootstrap.ADMIN_KEY_FILE).read_text().strip()
        finally:
            db.close()
        self.env = env
        self.gateway_url = f"http://127.0.0.1:{self.ports['gateway']}"
        self.http = requests.Session()
        # The gateway closes a kept-alive connection after 5 idle seconds; a request sent
        # on it at that very moment meets a closed socket (RemoteDisconnected). Any HTTP
        # client retries that for idempotent methods; so do the tests (never a POST).
        self.http.mount("http://", requests.adapters.HTTPAdapter(max_retries=urllib3.util.Retry(
            total=2, connect=2, read=2, status=0, other=0, backoff_factor=0.1)))
        self.http.headers["Authorization"] = f"Bearer {self.admin_key}"

    # --- processes ---------------------------------------------------------------

    def start(self, name: str, instance: str = "", wait: bool = True, **env_overrides: str) -> Process:
        """Starts ``medic serve <name>``; a second instance gets its own ports."""
        key = name + instance
        env = dict(self.env, **env_overrides)
        if instance:
            env[f"MEDIC_{name.upper()}_PORT"] = str(free_port())
        log = self.data_dir / f"{key}.log"
        process = Process(key, env, log)
        process.popen = subprocess.Popen([sys.executable, "-m", "medic_cli", "serve", name], env=env,
                                         stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.processes[key] = process
        if wait:
            self._wait_ready(process, name, int(env[f"MEDIC_{name.upper()}_PORT"]))
        return process

    def start_all(self) -> "System":
        for name in ("auth", "delivery", "routing", "heartbeat", "remediation", "gateway"):
            self.start(name)
        return self

    def _wait_ready(self, process: Process, name: str, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-3000:]}")
            if health.process_ready(name, "127.0.0.1", port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{process.name} not ready:\n{process.log.read_text()[-3000:]}")

    def stop(self, key: str, sig: int = signal.SIGTERM) -> int:
        return processes.stop(self.processes.pop(key).popen, sig, timeout=20)

    def stop_all(self) -> None:
        for key in list(self.processes)[::-1]:
            self.stop(key)

    # --- the HTTP API ------------------------------------------------------------

    def api(self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201), **kw):
        response = self.http.request(method, self.gateway_url + path, timeout=10, **kw)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()["results"] if response.content else None

    def register(self, name: str, interval_seconds: int = 2, **fields) -> dict:
        body = {"heartbeat_name": name, "service_name": name, "alert_interval_seconds": interval_seconds,
                **fields}
        return self.api("POST", "/service", json=body)[0]

    def beat(self, name: str, status: str = "UP") -> None:
        self.api("POST", "/heartbeat", expect=201, json={"heartbeat_name": name, "status": status})


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
        return processes.stop(self.process, signal.SIGINT, timeout=30)


def medic_env(tmp_path: Path, database_url: str | None,
              extra_env: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of a `medic up` on free ports, and its ports by name (GATEWAY, AUTH, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    # One block of ports: replica i of a process uses its port + 10*i (gateways + i).
    # gRPC at base+2..6, metrics at base+7..11; replica 1 adds 10: up to base+21.
    base = free_port_block(22)
    names = ("AUTH", "HEARTBEAT", "ROUTING", "DELIVERY", "REMEDIATION")
    ports = {"GATEWAY": base, **{name: base + 2 + n for n, name in enumerate(names)}}
    for name, port in ports.items():
        env[f"MEDIC_{name}_PORT"] = str(port)
    for n, name in enumerate(names):
        env[f"MEDIC_{name}_METRICS_PORT"] = str(base + 7 + n)
    env["MEDIC_DATA_DIR"] = str(tmp_path / "data")
    env["MEDIC_LOG_LEVEL"] = "WARNING"
    # Tests post as fast as they can; rate limits have tests of their own.
    env["MEDIC_RATE_LIMIT_HEARTBEAT_PER_MINUTE"] = "1000000"
    env["MEDIC_RATE_LIMIT_MANAGEMENT_PER_MINUTE"] = "1000000"
    env["MEDIC_RATE_LIMIT_CONSOLE_PER_MINUTE"] = "1000000"
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
