"""``medic up``: everything on one machine with one command.

Starts the embedded PostgreSQL when ``MEDIC_DATABASE_URL`` is unset, applies
migrations, creates the service credential and (first start only) the admin
key when no active one exists, starts every service and the gateway as child processes
(``medic serve <name>``), waits until each answers its health check, prints
the addresses, restarts a child that dies, and on Ctrl-C / SIGTERM stops the
gateways first, then the services, then the database.

``--replicas N`` starts N of every process on loopback: replica i of a service
listens on its port + 10*i, every client reaches all replicas of a service
through one gRPC target listing them (``ipv4:127.0.0.1:p0,127.0.0.1:p1``,
balanced round-robin), gateways listen on the gateway port + i, and rate
limits are counted in Redis (``MEDIC_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) so that they hold across replicas.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from medic import migrate
from medic.config import GRPC_SERVICES, Settings
from medic.db import Database, wait_until_reachable
from medic_cli.embedded import EmbeddedPostgres
from medic.errors import MedicError
from services.auth import bootstrap

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
REPLICA_PORT_STEP = 10
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Child:
    name: str
    replica: int
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0

    @property
    def label(self) -> str:
        return self.name if self.replica == 0 else f"{self.name}-{self.replica + 1}"


def _say(message: str) -> None:
    print(message, flush=True)


def _serve_command(name: str) -> list[str]:
    return [sys.executable, "-m", "medic_cli", "serve", name]


class Launcher:
    def __init__(self, settings: Settings, replicas: int = 1):
        self.settings = settings
        self.replicas = replicas
        self.embedded: EmbeddedPostgres | None = None
        self.env = dict(os.environ)
        self.children: list[Child] = []
        self._stopping = False

    # --- the process plan -----------------------------------------------------------

    def _port(self, name: str, replica: int) -> int:
        if name == "gateway":
            return self.settings.gateway_port + replica
        return self.settings.grpc_port(name) + REPLICA_PORT_STEP * replica

    def _plan(self) -> list[Child]:
        """Every child with its own ports; all of them share the targets of all replicas."""
        if self.replicas > 1:
            for name in GRPC_SERVICES:
                ports = [self._port(name, r) for r in range(self.replicas)]
                self.env[f"MEDIC_{name.upper()}_TARGET"] = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
            self.env.setdefault("MEDIC_REDIS_URL", self.settings.redis_url or DEFAULT_REDIS_URL)
        children = []
        for name in (*GRPC_SERVICES, "gateway"):
            for replica in range(self.replicas):
                env = {f"MEDIC_{name.upper()}_PORT": str(self._port(name, replica))}
                if name != "gateway":
                    metrics_port = self.settings.metrics_port(name)
                    env[f"MEDIC_{name.upper()}_METRICS_PORT"] = str(
                        metrics_port + REPLICA_PORT_STEP * replica if metrics_port else 0)
                children.append(Child(name, replica, self._port(name, replica), env))
        return children

    # --- start ------------------------------------------------------------------

    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        self.embedded = EmbeddedPostgres(self.settings.data_dir)
        _say(f"Starting embedded PostgreSQL in {self.embedded.folder} ...")
        return self.embedded.start()

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = self.database_url()
        try:
            wait_until_reachable(url)
        except MedicError:
            where = "MEDIC_DATABASE_URL" if self.settings.database_url else "the embedded PostgreSQL"
            raise RuntimeError(f"the database ({where}) did not accept a connection within 30 s") from None
        applied = migrate.migrate(url)
        if applied:
            _say(f"Applied migrations: {', '.join(applied)}")
        token = bootstrap.ensure_service_token(self.settings)
        self.env.update(MEDIC_DATABASE_URL=url, MEDIC_SERVICE_TOKEN=token)
        self.settings = dataclasses.replace(self.settings, database_url=url, service_token=token)
        admin_key = self._bootstrap_admin_key()
        self.children = self._plan()
        for child in self.children:
            if self._stopping:
                return
            self._spawn(child)
            self._wait_ready(child)
        self._print_addresses(admin_key)

    def _bootstrap_admin_key(self) -> str | None:
        db = Database(self.settings.database_url, 1, application_name="medic-launcher")
        try:
            return bootstrap.bootstrap_admin_key(self.settings, db)
        finally:
            db.close()

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(_serve_command(child.name), env={**self.env, **child.env},
                                         start_new_session=True)

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.label} exited with code {child.process.returncode} while starting")
            if self._is_ready(child):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{child.label} did not become ready within {START_TIMEOUT:.0f} s")

    @staticmethod
    def _is_ready(child: Child) -> bool:
        if child.name == "gateway":
            try:
                url = f"http://127.0.0.1:{child.port}/health/live"
                with urllib.request.urlopen(url, timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False
        with grpc.insecure_channel(f"127.0.0.1:{child.port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING

    def _print_addresses(self, admin_key: str | None) -> None:
        host = self.settings.host
        key_file = self.settings.data_dir.resolve() / bootstrap.ADMIN_KEY_FILE
        if admin_key:
            _say("")
            _say("Created an admin API key (no active one existed). It is shown this once and "
                 "kept in")
            _say(f"{key_file} (mode 0600):")
            _say(f"    {admin_key}")
        _say("")
        gateways = [c for c in self.children if c.name == "gateway"]
        _say("Medic is up. Gateway: " + "  ".join(f"http://{host}:{c.port}" for c in gateways)
             + f"  (API docs: http://{host}:{gateways[0].port}/docs)")
        for name in GRPC_SERVICES:
            replicas = [c for c in self.children if c.name == name]
            metrics_ports = [c.env[f"MEDIC_{name.upper()}_METRICS_PORT"] for c in replicas]
            _say(f"  gRPC {name:<9} " + ",".join(f"{host}:{c.port}" for c in replicas)
                 + "   metrics " + ",".join(f"http://{host}:{p}/metrics" for p in metrics_ports))
        if self.replicas > 1:
            _say(f"  rate limits in Redis at {self.env['MEDIC_REDIS_URL']}")
        _say(f"  data      {self.settings.data_dir.resolve()}   (admin key: {key_file})")
        _say("Press Ctrl-C to stop.")

    # --- supervise --------------------------------------------------------------

    def supervise(self) -> None:
        """Restarts children that die, with a growing pause, until asked to stop."""
        while not self._stopping:
            for child in self.children:
                if child.process is None or child.process.poll() is None:
                    continue
                now = time.monotonic()
                if child.next_start == 0.0:
                    delay = min(2 ** child.restarts, 30)
                    log.warning("%s exited with code %s; restarting in %d s",
                                child.label, child.process.returncode, delay)
                    _say(f"{child.label} exited (code {child.process.returncode}); restarting in {delay} s")
                    child.next_start = now + delay
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    self._spawn(child)
            time.sleep(0.2)

    # --- stop -------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        grace = self.settings.shutdown_grace_seconds
        for child in reversed(self.children):  # gateways first: stop taking requests
            self._terminate(child, grace)
        if self.embedded is not None:
            self.embedded.stop()
        _say("Medic stopped.")

    @staticmethod
    def _terminate(child: Child, grace: float) -> None:
        process = child.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace + 5)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.label)
            process.kill()
            process.wait()


def up(settings: Settings, replicas: int = 1) -> int:
    if replicas < 1:
        _say("medic up: --replicas must be >= 1")
        return 2
    launcher = Launcher(settings, replicas)

    def on_signal(signum, _frame):
        launcher._stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        launcher.start()
        launcher.supervise()
    except (RuntimeError, MedicError) as exc:  # a child that failed, the database unreachable, ...
        _say(f"medic up failed: {exc}")
        launcher.stop()
        return 1
    launcher.stop()
    return 0
