"""Delivery for tests and benchmarks: settings for fast runs, a real delivery
server, enqueueing, waiting for delivery statuses, and delivery processes."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from medic.config import Settings
from medic.db import Database
from tests.support import processes
from tests.support.authorizers import AllowAll
from tests.support.events import alert_event, webhook_target
from tests.support.servers import serving
from medic.v1 import common_pb2, delivery_pb2, delivery_pb2_grpc
from services.delivery import app as delivery_app

REPO = Path(__file__).resolve().parents[2]
FINAL = {"success", "failed", "skipped"}


def fast_settings(database_url: str, **overrides) -> Settings:
    """Loopback receivers allowed, short retry delays, quick polling."""
    values = dict(database_url=database_url, webhook_allow_private=True,
                  delivery_retry_delays=(0.2, 1.0), delivery_poll_seconds=0.05,
                  delivery_lease_seconds=10.0, delivery_http_timeout_seconds=3.0,
                  delivery_workers=8, delivery_per_destination=4,
                  slack_token="xoxb-test-token")
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def delivery_server(settings: Settings, db: Database | None = None):
    """A real DeliveryService (workers running) and a stub on it."""
    with serving(delivery_app.build(settings, db=db), AllowAll()) as running, \
            grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield delivery_pb2_grpc.DeliveryServiceStub(channel)


def enqueue(stub, event, targets=(), subscriptions=(), mode=common_pb2.NOTIFY_MODE_ALL):
    return stub.EnqueueNotifications(delivery_pb2.EnqueueNotificationsRequest(
        event=event, mode=mode, targets=list(targets), subscriptions=list(subscriptions)))


def statuses(db: Database, ids) -> dict[int, dict]:
    rows = db.all("SELECT delivery_id, status, attempts, last_response_code, last_error, "
                  "idempotency_key FROM deliveries WHERE delivery_id = ANY(%s)", (list(ids),))
    return {r["delivery_id"]: r for r in rows}


def wait_until_final(db: Database, ids, timeout: float = 30.0) -> dict[int, dict]:
    """Rows of the deliveries once all are success / failed / skipped (`timeout`
    is generous: a loaded machine runs the whole suite)."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        rows = statuses(db, ids)
        if len(rows) == len(ids) and all(r["status"] in FINAL for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries not final after {timeout} s: "
                                 f"{[(i, r['status']) for i, r in rows.items()]}")
        time.sleep(0.05)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The MEDIC_* environment that recreates `settings` in another process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if value == f.default:
            continue
        if isinstance(value, tuple):
            value = ",".join(f"{v:g}" for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f.metadata["env"]] = str(value)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


# Runs one delivery process the way `medic serve delivery` does (without auth).
SERVE = """
import sys
from medic import logs, server
from medic.config import Settings
from services.delivery import app
from tests.support.authorizers import AllowAll
settings = Settings.from_env()
logs.setup("delivery", sys.argv[1])
raise SystemExit(server.run(app.build(settings), host="127.0.0.1", port=0, metrics_port=0,
                            workers=4, grace=settings.shutdown_grace_seconds, authorizer=AllowAll()))
"""


def start_delivery_process(settings: Settings, log_level: str = "WARNING") -> subprocess.Popen:
    """A delivery process; its stderr (JSON logs) goes to `proc.log_file`."""
    log_file = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, log_level], env=settings_env(settings), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=log_file)
    proc.log_file = log_file
    return proc


def process_log(proc: subprocess.Popen) -> str:
    proc.log_file.seek(0)
    return proc.log_file.read().decode(errors="replace")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    processes.stop(proc, timeout=timeout)
    proc.log_file.close()


class DrippingReceiver:
    """An HTTP endpoint on 127.0.0.1 that answers one byte every `interval` seconds,
    never quiet long enough for a socket read to time out. `drip` is "headers"
    (the status line and headers dripped), "body" (headers at once, then a body of
    `length` announced bytes dripped), "unsized body" (no Content-Length: the
    body ends where the connection does) or "tls handshake" (an https URL whose
    server answers the client's hello with a long TLS record, dripped). With an
    `ssl_context` it speaks https. Records when each request (or hello) arrived
    and when the client hung up."""

    def __init__(self, drip: str = "body", interval: float = 0.3, length: int = 200,
                 ssl_context=None):
        import socket
        import threading
        self.drip, self.interval, self.length = drip, interval, length
        self.ssl_context = ssl_context
        self.arrivals: list[float] = []
        self.hang_ups: list[float] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="dripping-receiver")

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context or self.drip == "tls handshake" else "http"
        return f"{scheme}://localhost:{self._listener.getsockname()[1]}/hook"

    def __enter__(self) -> "DrippingReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        import threading
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        if self.drip == "tls handshake":
            with conn:
                conn.recv(65536)  # the client's hello
                self.arrivals.append(time.monotonic())
                # A handshake record of 16 KiB announced, then sent a byte at a time.
                self._drip(conn, b"\x16\x03\x03\x40\x00", b"\x02" * self.length)
            return
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(conn, server_side=True)
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            self.arrivals.append(time.monotonic())
            sized = self.drip != "unsized body"
            headers = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                       + (b"Content-Length: %d\r\n" % self.length if sized else b"Connection: close\r\n")
                       + b"\r\n")
            at_once, dripped = (b"", headers) if self.drip == "headers" else (headers, b"")
            self._drip(conn, at_once, dripped + b"x" * self.length)

    def _drip(self, conn, at_once: bytes, dripped: bytes) -> None:
        try:
            conn.sendall(at_once)
            for i in range(len(dripped)):
                if self._stopping.wait(self.interval):
                    return
                conn.sendall(dripped[i:i + 1])
        except OSError:  # the client hung up
            self.hang_ups.append(time.monotonic())


def enqueue_in_stack(stack, event, targets=(), subscriptions=()) -> list[int]:
    """Enqueues to the stack's delivery service as routing would (NOTIFY_MODE_ALL)."""
    from tests.support.auth import bearer

    channel = grpc.insecure_channel(f"127.0.0.1:{stack.servers['delivery'].port}")
    try:
        return list(delivery_pb2_grpc.DeliveryServiceStub(channel).EnqueueNotifications(
            delivery_pb2.EnqueueNotificationsRequest(
                event=event, mode=common_pb2.NOTIFY_MODE_ALL, targets=list(targets),
                subscriptions=list(subscriptions)),
            metadata=bearer(stack.admin_key)).delivery_ids)
    finally:
        channel.close()


def failed_delivery_in_stack(stack, db: Database, url: str) -> int:
    """A webhook delivery of the stack's delivery service that failed for good (the
    receiver at `url` must answer a permanent error)."""
    (delivery_id,) = enqueue_in_stack(stack, alert_event(), [webhook_target(url)])
    assert wait_until_final(db, [delivery_id])[delivery_id]["status"] == "failed"
    return delivery_id
