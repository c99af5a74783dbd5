"""A send ends after the send timeout in total, whatever the receiver does: a
receiver that drips its answer (never quiet long enough for a socket read to time
out) cannot hold a worker past the delivery's lease. Real local receivers."""
from __future__ import annotations

import time

import pytest

from services.delivery import http
from services.delivery.model import Outcome
from tests.fakes import WebhookReceiver
from tests.integration.delivery_support import (
    DrippingReceiver, alert_event, delivery_server, enqueue, fast_settings, statuses,
    webhook_target)

pytestmark = pytest.mark.timeout(60)


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_send_timeout_and_retried(db):
    # One byte every 0.3 s: each read gets something well within the 1.5 s timeout.
    settings = fast_settings(db.dsn, delivery_http_timeout_seconds=1.5, delivery_retry_delays=(30.0,))
    with DrippingReceiver("body", interval=0.3) as receiver:
        with delivery_server(settings, db) as stub:
            (delivery_id,) = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
            deadline = time.monotonic() + 8
            while statuses(db, [delivery_id])[delivery_id]["status"] == "pending":
                assert time.monotonic() < deadline, "the attempt did not end"
                time.sleep(0.05)
        row = db.one("SELECT status, attempts, last_error, last_latency_ms FROM deliveries "
                     "WHERE delivery_id = %s", (delivery_id,))
        while not receiver.hang_ups and time.monotonic() < deadline:
            time.sleep(0.05)  # the receiver notices at its next byte or two
        hung_up_after = receiver.hang_ups[0] - receiver.arrivals[0]
    assert row["status"] == "retrying" and row["attempts"] == 1
    assert row["last_error"] == "timeout after 1.5 s"
    assert 1400 <= row["last_latency_ms"] <= 2500
    assert 1.3 <= hung_up_after <= 3.0


@pytest.mark.parametrize("drip", ["headers", "body", "unsized body"])
def test_a_post_ends_at_its_timeout_whatever_part_of_the_answer_is_dripped(drip):
    with DrippingReceiver(drip, interval=0.25) as receiver:
        started = time.monotonic()
        response, result = http.post(receiver.url, b"{}", {"Content-Type": "application/json"}, 1.0)
        elapsed = time.monotonic() - started
    # An unsized body cut off would look complete: it must not count as an answer.
    assert response is None
    assert (result.outcome, result.error) == (Outcome.RETRYABLE, "timeout after 1 s")
    assert 0.9 <= elapsed <= 1.6


def test_answers_within_the_timeout_are_untouched_and_connections_are_reused():
    with WebhookReceiver() as hook:
        results = [http.post(hook.url, b"{}", {"Content-Type": "application/json"}, 0.5)
                   for _ in range(3)]
        time.sleep(0.7)  # past the deadlines of all three: the kept-alive connection is not cut off
        later = http.post(hook.url, b"{}", {"Content-Type": "application/json"}, 0.5)
    assert [r.outcome for _, r in results + [later]] == [Outcome.SUCCESS] * 4
    assert len({r.headers.get("host") for r in hook.requests}) == 1


def test_a_dripping_answer_over_tls_is_cut_off_too(monkeypatch, tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    manager = http.pool(public_only=False)  # trusts the test's CA for this test only
    monkeypatch.setitem(manager.connection_pool_kw, "ca_certs", str(tmp_path / "ca.pem"))
    manager.clear()
    try:
        with DrippingReceiver("body", interval=0.25, ssl_context=context) as receiver:
            started = time.monotonic()
            response, result = http.post(receiver.url, b"{}", {"Content-Type": "application/json"}, 1.0)
            elapsed = time.monotonic() - started
    finally:
        manager.clear()
    assert response is None and result.error == "timeout after 1 s", result
    assert 0.9 <= elapsed <= 1.6
