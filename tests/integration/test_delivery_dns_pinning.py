"""Webhook sends connect only to the address the SSRF guard vetted (no DNS
rebinding): a real WebhookSender posting to a real local receiver, with the
name lookup (the external party here) answered by the test."""
from __future__ import annotations

import time

from medic import ssrf
from services.delivery.integrations.webhook import WebhookSender
from services.delivery.model import Notification, Outcome


def notification(url: str) -> Notification:
    event = {"event_id": "alert-1-trigger", "kind": "trigger", "alert_id": 1,
             "service": {"service_id": 7, "heartbeat_name": "api"}, "occurred_at": None}
    return Notification(delivery_id=1, claim_token="t", target_type="webhook", config={"url": url},
                        event=event, idempotency_key="alert-1-trigger.0",
                        destination_key="webhook:x", round_attempts=1)


def test_a_name_that_turns_private_after_the_check_is_refused_at_connect_time(monkeypatch, receiver):
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public when checked, then rebound
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: next(answers))

    result = WebhookSender(timeout=2, allow_private=False).send(
        notification(f"http://localhost:{receiver.port}/hook"))

    assert result.outcome is Outcome.PERMANENT
    assert "non-public address (127.0.0.1)" in result.error
    time.sleep(0.2)
    assert receiver.requests == []


def test_the_connection_goes_to_the_vetted_address_and_keeps_the_host_name(monkeypatch, receiver):
    # hook.invalid exists in no DNS: only the guard's own answer can lead anywhere.
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.1"] if host == "hook.invalid" else [])
    monkeypatch.setattr(ssrf, "is_public", lambda address: True)  # treat the loopback receiver as public

    result = WebhookSender(timeout=2, allow_private=False).send(
        notification(f"http://hook.invalid:{receiver.port}/hook"))

    assert result.outcome is Outcome.SUCCESS, result.error
    [request] = receiver.wait_for(1)
    assert request.header("host") == f"hook.invalid:{receiver.port}"


def test_a_kept_alive_connection_keeps_the_host_name(monkeypatch, receiver):
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.1"] if host == "hook.invalid" else [])
    monkeypatch.setattr(ssrf, "is_public", lambda address: True)
    sender = WebhookSender(timeout=2, allow_private=False)

    for _ in range(2):
        assert sender.send(notification(f"http://hook.invalid:{receiver.port}/hook")).outcome is Outcome.SUCCESS

    assert [r.header("host") for r in receiver.wait_for(2)] == [f"hook.invalid:{receiver.port}"] * 2


def test_https_to_a_vetted_address_checks_the_certificate_against_the_host_name(monkeypatch, tmp_path):
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import trustme

    from services.delivery import http

    ca = trustme.CA()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hook.test").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.1"] if host.endswith(".test") else [])
    monkeypatch.setattr(ssrf, "is_public", lambda address: True)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    manager = http.pool(public_only=True)  # trusts the test's CA for this test only
    monkeypatch.setitem(manager.connection_pool_kw, "ca_certs", str(tmp_path / "ca.pem"))
    manager.clear()
    sender = WebhookSender(timeout=2, allow_private=False)
    try:
        ok = sender.send(notification(f"https://hook.test:{port}/hook"))
        # Another name resolving to the same address: its certificate does not match.
        wrong = sender.send(notification(f"https://other.test:{port}/hook"))
    finally:
        server.shutdown()
        server.server_close()
        manager.clear()

    assert ok.outcome is Outcome.SUCCESS, ok.error
    assert seen == [f"hook.test:{port}"]
    assert wrong.outcome is Outcome.RETRYABLE and "connection error" in wrong.error
