"""``medic up``: everything on one machine with one command.

Starts the embedded PostgreSQL when ``MEDIC_DATABASE_URL`` is unset, applies
migrations, starts every service and the gateway as child processes
(``medic serve <name>``), waits until each answers its health check, prints
the addresses, restarts a child that dies, and on Ctrl-C / SIGTERM stops the
gateway first, then the services, then the database.
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
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from medic import migrate
from medic.config import GRPC_SERVICES, Settings
from medic.db import Database, wait_until_reachable
from medic.embedded import EmbeddedPostgres
from services.auth import bootstrap

log = logging.getLogger(__name__)

SERVICES = GRPC_SERVICES
START_TIMEOUT = 60.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0


def _say(message: str) -> None:
    print(message, flush=True)


def _serve_command(name: str) -> list[str]:
    return [sys.executable, "-m", "medic.cli", "serve", name]


class Launcher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.children = [Child(name) for name in (*SERVICES, "gateway")]
        self.env = dict(os.environ)
        self._stopping = False

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
        wait_until_reachable(url)
        applied = migrate.migrate(url)
        if applied:
            _say(f"Applied migrations: {', '.join(applied)}")
        token = bootstrap.ensure_service_token(self.settings)
        self.env.update(MEDIC_DATABASE_URL=url, MEDIC_SERVICE_TOKEN=token)
        self.settings = dataclasses.replace(self.settings, database_url=url, service_token=token)
        admin_key = self._bootstrap_admin_key()
        for child in self.children:
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
        child.process = subprocess.Popen(_serve_command(child.name), env=self.env,
                                         start_new_session=True)

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.process.returncode} while starting")
            if self._is_ready(child.name):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{child.name} did not become ready within {START_TIMEOUT:.0f} s")

    def _is_ready(self, name: str) -> bool:
        if name == "gateway":
            try:
                url = f"http://127.0.0.1:{self.settings.gateway_port}/health/live"
                with urllib.request.urlopen(url, timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False
        with grpc.insecure_channel(self.settings.target(name)) as channel:
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
            _say("First start: created an admin API key. It is shown this once and kept in")
            _say(f"{key_file} (mode 0600):")
            _say(f"    {admin_key}")
        _say("")
        _say(f"Medic is up. Gateway: http://{host}:{self.settings.gateway_port}  "
             f"(API docs: http://{host}:{self.settings.gateway_port}/docs)")
        for name in SERVICES:
            _say(f"  gRPC {name:<9} {self.settings.target(name)}   "
                 f"metrics http://{host}:{self.settings.metrics_port(name)}/metrics")
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
                                child.name, child.process.returncode, delay)
                    _say(f"{child.name} exited (code {child.process.returncode}); restarting in {delay} s")
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
        for child in reversed(self.children):  # gateway first: stop taking requests
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
            log.warning("%s did not stop in time; killing it", child.name)
            process.kill()
            process.wait()


def up(settings: Settings) -> int:
    launcher = Launcher(settings)
    stop_signal = []

    def on_signal(signum, _frame):
        stop_signal.append(signum)
        launcher._stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        launcher.start()
        launcher.supervise()
    except RuntimeError as exc:
        _say(f"medic up failed: {exc}")
        launcher.stop()
        return 1
    launcher.stop()
    return 0
