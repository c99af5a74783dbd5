"""``medic up``: everything on one machine with one command.

Starts the embedded PostgreSQL when ``MEDIC_DATABASE_URL`` is unset, applies
migrations, creates the service credential and (first start only) the admin
key when no active one exists, starts every service and the gateway as child processes
(``medic serve <name>``), waits until each answers its health check, prints
the addresses, restarts a child that dies, and on Ctrl-C / SIGTERM stops the
gateways first, then the services, then the database.

Failing early rather than looping:

* Every port is checked before anything starts; a busy one stops ``medic up``
  at once (exit 1) with the port, the variable that moves it, and whether a
  Medic already answers there.
* A child that exits before it is ready is started again up to
  ``START_ATTEMPTS`` times in a row; then ``medic up`` stops everything and exits
  1 with the child's last error line. Restarts with a growing pause (1, 2, 4 ...
  30 s) are for children that crash after a healthy start; a child that ran
  healthy for ``STABLE_SECONDS`` starts again from 1 s.
* "Medic is up" is printed only once every process is ready.

While it runs, ``$MEDIC_DATA_DIR/up.json`` names its processes and ports (for
``medic healthcheck`` without an argument).

``--replicas N`` starts N of every process on loopback: replica i of a service
listens on its port + 10*i, every client reaches all replicas of a service
through one gRPC target listing them (``ipv4:127.0.0.1:p0,127.0.0.1:p1``,
balanced round-robin), gateways listen on the gateway port + i, and rate
limits are counted in Redis (``MEDIC_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) so that they hold across replicas.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from medic import health, migrate
from medic.config import GRPC_SERVICES, Settings
from medic.db import Database, wait_until_reachable
from medic_cli.embedded import EmbeddedPostgres
from medic.errors import MedicError
from services.auth import bootstrap
from services.remediation import secrets as step_secrets

log = logging.getLogger(__name__)

SECRETS_KEY_FILE = "secrets.key"
START_TIMEOUT = 60.0
START_ATTEMPTS = 3  # a child that exits this many times in a row before it is ready stops medic up
STABLE_SECONDS = 60.0  # healthy this long: the next restart waits 1 s again
MAX_RESTART_DELAY = 30
REPLICA_PORT_STEP = 10
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STATE_FILE = "up.json"
_TAIL_LINES = 20


def ensure_secrets_key(settings: Settings) -> str:
    """MEDIC_SECRETS_KEY when set; else the key in $MEDIC_DATA_DIR/secrets.key, generated
    (mode 0600) on the first start. The remediation service seals step secrets with it."""
    if settings.secrets_key:
        step_secrets.Keyring(settings.secrets_key)  # refuses a malformed key now, naming it
        return settings.secrets_key
    path = Path(settings.data_dir) / SECRETS_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        step_secrets.Keyring(key)
        return key
    key = step_secrets.generate_key()
    bootstrap.write_secret(path, key)
    return key


def restart_delay(restarts: int, healthy_for: float | None) -> tuple[int, int]:
    """For a child that exited after ``restarts`` earlier restarts, having been ready
    for ``healthy_for`` seconds (None: never ready): (restarts counting this one,
    seconds to wait before it). The pause doubles per restart up to
    MAX_RESTART_DELAY and starts from 1 s again after a stable run."""
    if healthy_for is not None and healthy_for >= STABLE_SECONDS:
        restarts = 0
    return restarts + 1, min(2 ** restarts, MAX_RESTART_DELAY)


@dataclass
class Child:
    name: str
    replica: int
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    ready_at: float | None = None  # monotonic; None until ready after its latest start
    failed_starts: int = 0  # exits before ready, in a row
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=_TAIL_LINES))
    relayed: threading.Event = field(default_factory=threading.Event)  # its stderr reached EOF

    @property
    def label(self) -> str:
        return self.name if self.replica == 0 else f"{self.name}-{self.replica + 1}"

    def ports(self) -> list[tuple[int, str]]:
        """(port, the variable that sets it) of each port this child listens on."""
        found = [(self.port, f"MEDIC_{self.name.upper()}_PORT")]
        variable = f"MEDIC_{self.name.upper()}_METRICS_PORT"
        if int(self.env.get(variable, 0)):
            found.append((int(self.env[variable]), variable))
        return found

    def last_error(self) -> str:
        """The last thing the child wrote on stderr: a traceback's last line, or a
        JSON log record's message (and its exception's last line)."""
        for line in reversed(self.tail):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return line
            if isinstance(record, dict) and "message" in record:
                exc = str(record.get("exc_info") or record.get("exception") or "").strip()
                return record["message"] + (f" ({exc.splitlines()[-1]})" if exc else "")
            return line
        return "it wrote nothing on stderr"


class StartFailed(RuntimeError):
    """medic up cannot start (or keep) every process; the message says why."""


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

    def check_ports(self) -> None:
        """Raises StartFailed naming every port something already listens on."""
        problems = []
        for child in self.children:
            for port, variable in child.ports():
                if not _port_free(self.settings.host, port):
                    problems.append(f"port {port} ({variable}) is already in use: "
                                    f"{_who_answers(child.name, variable, port)}")
        if problems:
            raise StartFailed("\n  ".join([
                "cannot start, ports in use (nothing was started):", *problems,
                "Stop what listens there, or move Medic with the variables named "
                "(e.g. MEDIC_GATEWAY_PORT=8081 medic up)."]))

    def start(self) -> None:
        self.children = self._plan()
        self.check_ports()
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
        self.env.update(MEDIC_DATABASE_URL=url, MEDIC_SERVICE_TOKEN=token,
                        MEDIC_SECRETS_KEY=ensure_secrets_key(self.settings))
        self.settings = dataclasses.replace(self.settings, database_url=url, service_token=token)
        admin_key = self._bootstrap_admin_key()
        for child in self.children:
            if self._stopping:
                return
            self._start_until_ready(child)
        # Each was ready when started; "up" only if all still are.
        for child in self.children:
            if child.process.poll() is not None or not self._is_ready(child):
                raise StartFailed(f"{child.label} stopped being ready while the others started: "
                                  f"{child.last_error()}")
        self._write_state()
        self._print_addresses(admin_key)

    def _bootstrap_admin_key(self) -> str | None:
        db = Database(self.settings.database_url, 1, application_name="medic-launcher")
        try:
            return bootstrap.bootstrap_admin_key(self.settings, db)
        finally:
            db.close()

    def _spawn(self, child: Child) -> None:
        child.tail.clear()
        child.ready_at = None
        child.relayed = threading.Event()
        child.process = subprocess.Popen(_serve_command(child.name), env={**self.env, **child.env},
                                         start_new_session=True, stderr=subprocess.PIPE)
        threading.Thread(target=_relay_stderr, args=(child.process, child.tail, child.relayed),
                         daemon=True, name=f"stderr-{child.label}").start()

    def _start_until_ready(self, child: Child) -> None:
        """Starts a child and waits until it is ready; one that exits before is started
        again, up to START_ATTEMPTS times in a row, then StartFailed."""
        while True:
            self._spawn(child)
            if self._wait_ready(child):
                return
            if self._stopping:
                return
            self._failed_start(child)
            time.sleep(1)

    def _failed_start(self, child: Child) -> None:
        child.process.wait()
        _drain(child)
        child.failed_starts += 1
        _say(f"{child.label} exited (code {child.process.returncode}) before it was ready: "
             f"{child.last_error()}")
        if child.failed_starts >= START_ATTEMPTS:
            raise StartFailed(
                f"{child.label} exited before it was ready {child.failed_starts} times in a row "
                f"(last exit code {child.process.returncode}); its last error: {child.last_error()}")

    def _wait_ready(self, child: Child) -> bool:
        """True once ready; False if it exited first."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not self._stopping:
            if child.process.poll() is not None:
                return False
            if self._is_ready(child):
                self._became_ready(child)
                return True
            time.sleep(0.1)
        if self._stopping:
            return False
        raise StartFailed(f"{child.label} did not become ready within {START_TIMEOUT:.0f} s: "
                          f"{child.last_error()}")

    @staticmethod
    def _became_ready(child: Child) -> None:
        child.ready_at = time.monotonic()
        child.failed_starts = 0

    @staticmethod
    def _is_ready(child: Child) -> bool:
        return health.process_ready(child.name, "127.0.0.1", child.port)

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

    def _write_state(self) -> None:
        state = {"pid": os.getpid(), "host": self.settings.host,
                 "processes": [{"name": c.name, "label": c.label, "port": c.port}
                               for c in self.children]}
        (self.settings.data_dir / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")

    def _remove_state(self) -> None:
        path = self.settings.data_dir / STATE_FILE
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass

    # --- supervise --------------------------------------------------------------

    def supervise(self) -> None:
        """Restarts children that crash, with a growing pause, until asked to stop;
        raises StartFailed when one keeps exiting before it is ready."""
        while not self._stopping:
            for child in self.children:
                self._supervise(child, time.monotonic())
            time.sleep(0.2)

    def _supervise(self, child: Child, now: float) -> None:
        if child.process is None:
            return
        if child.process.poll() is None:
            if child.ready_at is None and self._is_ready(child):
                self._became_ready(child)
            return
        if child.next_start == 0.0:  # it has just exited
            if child.ready_at is None:
                self._failed_start(child)  # raises after START_ATTEMPTS in a row
                healthy_for = None
            else:
                _drain(child)
                healthy_for = now - child.ready_at
            child.restarts, delay = restart_delay(child.restarts, healthy_for)
            log.warning("%s exited with code %s; restarting in %d s",
                        child.label, child.process.returncode, delay)
            _say(f"{child.label} exited (code {child.process.returncode}: {child.last_error()}); "
                 f"restarting in {delay} s")
            child.next_start = now + delay
        elif now >= child.next_start:
            child.next_start = 0.0
            self._spawn(child)

    # --- stop -------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        grace = self.settings.shutdown_grace_seconds
        for child in reversed(self.children):  # gateways first: stop taking requests
            self._terminate(child, grace)
        self._remove_state()
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


# --- helpers ------------------------------------------------------------------

def _relay_stderr(process: subprocess.Popen, tail: collections.deque,
                  done: threading.Event) -> None:
    """Passes a child's stderr on to ours, keeping its last lines for error messages."""
    try:
        for raw in process.stderr:
            line = raw.decode(errors="replace")
            tail.append(line)
            sys.stderr.write(line)
        sys.stderr.flush()
    finally:
        done.set()


def _drain(child: Child, timeout: float = 2.0) -> None:
    """Waits (briefly) until everything an exited child wrote has been relayed."""
    child.relayed.wait(timeout)


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers bind (SO_REUSEADDR: a port in TIME_WAIT is free), but without
        # SO_REUSEPORT, which gRPC sets and which would let two servers share a port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _who_answers(name: str, variable: str, port: int) -> str:
    """Whether a Medic answers on a busy port, in words."""
    if variable.endswith("_METRICS_PORT"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                if b"medic_" in response.read():
                    return "a Medic process's metrics answer there (is another `medic up` running?)"
        except OSError:
            pass
        return "something that is not a Medic metrics endpoint listens there"
    if name == "gateway":
        if health.http_alive(f"http://127.0.0.1:{port}/health/live", timeout=2):
            return "a Medic gateway answers there (is another `medic up` running?)"
        return "something that is not a Medic gateway listens there"
    from medic.v1 import auth_pb2, heartbeat_pb2, routing_pb2, delivery_pb2, remediation_pb2

    modules = {"auth": auth_pb2, "heartbeat": heartbeat_pb2, "routing": routing_pb2,
               "delivery": delivery_pb2, "remediation": remediation_pb2}
    service = next(iter(modules[name].DESCRIPTOR.services_by_name.values())).full_name
    # A server that knows the service by name answers (serving or not); any other
    # server or listener does not.
    if health.grpc_check(f"127.0.0.1:{port}", service, timeout=2) in ("healthy", "unhealthy"):
        return f"a Medic {name} service answers there (is another `medic up` running?)"
    return f"something that is not a Medic {name} service listens there"
