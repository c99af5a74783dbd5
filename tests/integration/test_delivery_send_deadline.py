"""A send ends after the send timeout in total, whatever the receiver does: a
receiver that drips its answer (never quiet long enough for a socket read to time
out) cannot hold a worker past the delivery's lease. Real local receivers.

This machine may be loaded: an attempt cut off must end no sooner than its
timeout and well before the drip would (tens of seconds later); upper bounds
leave 3 s, and requests that must succeed get a generous timeout."""
from __future__ import annotations

import threading
import time

import pytest
import urllib3

from services.delivery import http
from services.delivery.model import Outcome
from tests.support.receivers import Reply, WebhookReceiver
from tests.support.delivery import (DrippingReceiver, delivery_server, enqueue, fast_settings,
    statuses)
from tests.support.events import alert_event, webhook_target

pytestmark = pytest.mark.timeout(60)

SLACK = 3.0  # what a loaded machine may add to an attempt cut off at its timeout
EARLY = 0.05  # how much sooner than its timeout an attempt may seem to end (clocks)
JSON = {"Content-Type": "application/json"}


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_send_timeout_and_retried(db):
    # One byte every 0.3 s: each read gets something well within the 1.5 s timeout.
    settings = fast_settings(db.dsn, delivery_http_timeout_seconds=1.5, delivery_retry_delays=(30.0,))
    with DrippingReceiver("body", interval=0.3) as receiver:
        with delivery_server(settings, db) as stub:
            (delivery_id,) = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
            deadline = time.monotonic() + 20  # the drip lasts 60 s
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
    assert (1.5 - EARLY) * 1000 <= row["last_latency_ms"] <= (1.5 + SLACK) * 1000
    # The request arrived after the attempt began, so the cut-off may look sooner.
    assert 0 < hung_up_after <= 1.5 + SLACK


@pytest.mark.parametrize("drip", ["headers", "body", "unsized body", "tls handshake"])
def test_a_post_ends_at_its_timeout_whatever_part_of_the_answer_is_dripped(drip):
    with DrippingReceiver(drip, interval=0.25) as receiver:
        started = time.monotonic()
        response, result = http.post(receiver.url, b"{}", JSON, 1.0)
        elapsed = time.monotonic() - started
    # An unsized body cut off would look complete: it must not count as an answer.
    assert response is None
    assert (result.outcome, result.error) == (Outcome.RETRYABLE, "timeout after 1 s")
    assert 1.0 - EARLY <= elapsed <= 1.0 + SLACK


def test_answers_within_the_timeout_are_untouched_and_connections_are_reused():
    with WebhookReceiver() as hook:
        results = [http.post(hook.url, b"{}", JSON, 5.0) for _ in range(3)]
        time.sleep(5.3)  # past the deadlines of all three: the kept-alive connection is not cut off
        later = http.post(hook.url, b"{}", JSON, 5.0)
        ports = [r.client_port for r in hook.requests]
    assert [r.outcome for _, r in results + [later]] == [Outcome.SUCCESS] * 4
    assert len(ports) == 4 and len(set(ports)) == 1, ports  # one connection, never cut


def test_a_deadline_passing_after_the_answer_never_cuts_the_connection_another_request_took(
        monkeypatch):
    """urllib3 puts the connection back in the pool inside the read of a body of
    known length, before the request's end is told to the watchdog. Here the first
    request's thread stops right there (as a descheduled thread would) until a
    second request has taken its connection and the first's deadline has passed:
    neither request may be cut off."""
    first_in_window = threading.Event()
    second_may_answer = threading.Event()
    real_end = http._Watchdog.end

    def end_late(watchdog, deadline):
        if threading.current_thread().name == "first":
            first_in_window.set()
            hook.wait_for(2)  # the second request is on the connection
            time.sleep(max(0.0, deadline.at - time.monotonic()) + 3 * http._Watchdog.CHECK_SECONDS)
            second_may_answer.set()
        return real_end(watchdog, deadline)

    monkeypatch.setattr(http._Watchdog, "end", end_late)
    results = {}

    def first():
        results["first"] = http.post(hook.url + "/first", b"{}", JSON, 1.5)[1]

    with WebhookReceiver() as hook:
        hook.script(Reply(200, {}), lambda request: second_may_answer.wait(20) and Reply(200, {}))
        thread = threading.Thread(target=first, name="first")
        thread.start()
        assert first_in_window.wait(10)
        results["second"] = http.post(hook.url + "/second", b"{}", JSON, 10.0)[1]
        thread.join(20)
        results["third"] = http.post(hook.url + "/third", b"{}", JSON, 5.0)[1]
        ports = [r.client_port for r in hook.requests]
    assert {name: (r.outcome, r.error) for name, r in results.items()} == {
        name: (Outcome.SUCCESS, "") for name in ("first", "second", "third")}
    assert len(ports) == 3 and len(set(ports)) == 1, ports  # shared, and never cut off


def test_an_answer_read_whole_counts_even_if_the_deadline_strikes_before_its_connection_is_put_back(
        monkeypatch):
    """The body (of known length) is read, then the thread stops before the
    connection goes back to the pool, and the deadline passes: the watchdog cuts
    the connection, but the answer was whole, so it counts (sending it again
    would be a duplicate); the cut connection is not used again."""
    real_release = urllib3.response.HTTPResponse.release_conn
    stopped = []

    def release_late(response):
        deadline = getattr(http._WATCHDOG._current, "deadline", None)
        if deadline is not None and not stopped:
            stopped.append(deadline)
            time.sleep(max(0.0, deadline.at - time.monotonic()) + 3 * http._Watchdog.CHECK_SECONDS)
        return real_release(response)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "release_conn", release_late)
    with WebhookReceiver() as hook:
        response, result = http.post(hook.url, b"{}", JSON, 1.0)
        later = http.post(hook.url, b"{}", JSON, 5.0)[1]
        ports = [r.client_port for r in hook.requests]
    assert stopped and stopped[0].cut_off  # the watchdog did strike
    assert (result.outcome, result.error, response.json()) == (Outcome.SUCCESS, "", {})
    assert later.outcome is Outcome.SUCCESS
    assert len(set(ports)) == 2, ports  # the cut connection was dropped


def test_connecting_ends_at_the_deadline_however_many_addresses_the_host_has(monkeypatch):
    """Each TCP connect gets what is left of the deadline, and no further address
    is tried once it has passed (three silent addresses took three timeouts)."""
    tries: list[float] = []

    def silent_address(address, timeout, **kwargs):
        tries.append(timeout)
        time.sleep(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(http._WatchedHTTPConnection, "_addresses",
                        lambda connection: ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
    monkeypatch.setattr(urllib3.util.connection, "create_connection", silent_address)
    started = time.monotonic()
    response, result = http.post("http://hook.invalid/hook", b"{}", JSON, 1.0)
    elapsed = time.monotonic() - started
    assert response is None and (result.outcome, result.error) == (Outcome.RETRYABLE, "timeout after 1 s")
    assert tries and tries[0] <= 1.0 and sum(tries) <= 1.0 + EARLY, tries
    assert 1.0 - EARLY <= elapsed <= 1.0 + SLACK


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
            response, result = http.post(receiver.url, b"{}", JSON, 1.0)
            elapsed = time.monotonic() - started
    finally:
        manager.clear()
    assert response is None and result.error == "timeout after 1 s", result
    assert 1.0 - EARLY <= elapsed <= 1.0 + SLACK
