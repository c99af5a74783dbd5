"""Shutting delivery down while an outcome is still being written: a delivery that
was already sent is recorded, never released for another process to send again."""
from __future__ import annotations

import contextlib
import threading
import time

import grpc
import psycopg2

from medic.server import create_server
from tests.support.authorizers import AllowAll
from medic.v1 import delivery_pb2_grpc
from services.delivery import app as delivery_app
from tests.support.receivers import Reply, WebhookReceiver
from tests.support.delivery import enqueue, fast_settings
from tests.support.events import alert_event, webhook_target


def test_deliveries_sent_before_shutdown_are_recorded_not_released(db):
    """A is answered first and its outcome's write waits for a lock the test holds,
    so the recorder is stuck on it; B is answered next and its outcome waits in
    the recorder's queue. Stop with a short grace: neither may be released (the
    recorder could then no longer write B's outcome, and B would go out again)."""
    with WebhookReceiver() as first, WebhookReceiver() as second:
        first.script(Reply(200, delay=0.4))
        second.script(Reply(200, delay=1.0))
        running = create_server(delivery_app.build(fast_settings(db.dsn), db=db), port=0, workers=4,
                                authorizer=AllowAll())
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        ids = enqueue(stub, alert_event(), [webhook_target(first.url, target_id=1),
                                            webhook_target(second.url, target_id=2)]).delivery_ids
        channel.close()
        first.wait_for(1)
        second.wait_for(1)
        by_url = {r["url"]: r["delivery_id"] for r in db.all(
            "SELECT delivery_id, config->>'url' AS url FROM deliveries WHERE delivery_id = ANY(%s)",
            (list(ids),))}
        a, b = by_url[first.url], by_url[second.url]

        blocker = psycopg2.connect(db.dsn, options="-c search_path=medic")
        try:
            blocker.cursor().execute("SELECT 1 FROM deliveries WHERE delivery_id = %s FOR UPDATE", (a,))
            time.sleep(1.4)  # both answered 200: A's outcome waits for the lock, B's behind it
            stopped = threading.Event()

            def stop():
                running.component.on_stop[0](0.2)  # the workers' stop, with a short grace
                stopped.set()

            stopper = threading.Thread(target=stop)
            stopper.start()
            time.sleep(1.0)  # the grace is over; stop() waits for the outcomes of what was sent
            assert not stopped.is_set()
        finally:
            blocker.rollback()
            blocker.close()
        stopper.join(timeout=10)
        assert stopped.is_set()
        rows = {r["delivery_id"]: (r["status"], r["attempts"], r["claimed"]) for r in db.all(
            "SELECT delivery_id, status, attempts, claim_token IS NOT NULL AS claimed FROM deliveries"
            " WHERE delivery_id = ANY(%s)", ([a, b],))}
        assert rows == {a: ("success", 1, False), b: ("success", 1, False)}
        assert len(first.requests) == 1 and len(second.requests) == 1
        running.server.stop(0)


@contextlib.contextmanager
def _delivery_server(db, settings):
    """A delivery server on a free port: (a stub to it, its workers)."""
    running = create_server(delivery_app.build(settings, db=db), port=0, workers=4, authorizer=AllowAll())
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield delivery_pb2_grpc.DeliveryServiceStub(channel), running.component.on_stop[0].__self__
    finally:
        channel.close()
        running.server.stop(0)


def _columns(db, delivery_id):
    return db.one("SELECT status, attempts, round_attempts, last_attempt_at IS NULL AS never_attempted,"
                  " claim_token IS NULL AS unclaimed, next_attempt_at <= now() AS due"
                  " FROM deliveries WHERE delivery_id = %s", (delivery_id,))


def _wait_for_claim(db, delivery_id):
    deadline = time.monotonic() + 20
    while _columns(db, delivery_id)["unclaimed"]:
        assert time.monotonic() < deadline, "not claimed"
        time.sleep(0.02)


def test_a_delivery_released_before_its_send_began_keeps_its_attempt_count(db):
    """Claimed, then released at shutdown without being sent: its claim's attempt is
    given back, so the release uses up none of its retries."""
    with WebhookReceiver() as receiver:
        held = threading.Event()
        with _delivery_server(db, fast_settings(db.dsn, delivery_workers=1)) as (stub, workers):
            workers._pool.submit(held.wait)  # the only sending thread is busy: a claim waits for it
            try:
                (delivery_id,) = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
                _wait_for_claim(db, delivery_id)
                claimed = _columns(db, delivery_id)
                workers.stop(0.2)
                released = _columns(db, delivery_id)
            finally:
                held.set()
        time.sleep(0.2)
        assert receiver.requests == []
    assert (claimed["attempts"], claimed["round_attempts"]) == (1, 1)
    assert released == {"status": "pending", "attempts": 0, "round_attempts": 0, "never_attempted": True,
                        "unclaimed": True, "due": True}


def test_a_delivery_cut_short_mid_send_at_shutdown_counts_its_attempt(db):
    """Released while its request was out: the receiver may have got it, so the
    attempt counts (as after a crash)."""
    stopped = threading.Event()
    with WebhookReceiver() as receiver:
        receiver.script(lambda request: stopped.wait(20) and Reply(200))  # answers after the stop
        settings = fast_settings(db.dsn, delivery_http_timeout_seconds=30.0, delivery_lease_seconds=60.0)
        with _delivery_server(db, settings) as (stub, workers):
            try:
                (delivery_id,) = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
                receiver.wait_for(1)
                workers.stop(0.1)
                released = _columns(db, delivery_id)
            finally:
                stopped.set()
        deadline = time.monotonic() + 20
        while workers._in_flight and time.monotonic() < deadline:
            time.sleep(0.02)  # the answer came; its outcome is not recorded (the claim is gone)
    # Counted, but with no outcome to record: last_attempt_at and the other last_*
    # columns still describe the last recorded attempt (none here).
    assert released == {"status": "pending", "attempts": 1, "round_attempts": 1, "never_attempted": True,
                        "unclaimed": True, "due": True}


def test_a_delivery_released_before_its_retry_began_keeps_its_last_attempt(db):
    """Attempted once (retryable), claimed again and released at shutdown before
    that send began: the row says what it said after the first attempt."""
    with WebhookReceiver() as receiver:
        receiver.script(Reply(503))
        settings = fast_settings(db.dsn, delivery_workers=1, delivery_retry_delays=(2.0,))
        held = threading.Event()
        with _delivery_server(db, settings) as (stub, workers):
            try:
                (delivery_id,) = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
                deadline = time.monotonic() + 20
                while _attempt(db, delivery_id)["status"] != "retrying":
                    assert time.monotonic() < deadline, "the first attempt was not recorded"
                    time.sleep(0.02)
                after_first = _attempt(db, delivery_id)
                workers._pool.submit(held.wait)  # the only sending thread is busy: the retry waits
                _wait_for_claim(db, delivery_id)
                workers.stop(0.2)
                released = _attempt(db, delivery_id)
            finally:
                held.set()
    assert after_first["attempts"] == 1 and after_first["last_attempt_at"] is not None
    assert released == after_first and len(receiver.requests) == 1


def _attempt(db, delivery_id):
    return db.one("SELECT status, attempts, round_attempts, last_attempt_at, last_response_code,"
                  " last_error FROM deliveries WHERE delivery_id = %s", (delivery_id,))
