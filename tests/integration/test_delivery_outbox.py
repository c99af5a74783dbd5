"""The delivery service against real PostgreSQL and real local HTTP receivers:
retries, permanent failures, Retry-After, notify modes, idempotent enqueue,
manual retry, the SSRF guard at send time, and a slow receiver's isolation."""
from __future__ import annotations

import time

import grpc
import pytest

from medic.v1 import common_pb2, delivery_pb2
from tests.support.receivers import Reply, WebhookReceiver
from tests.support.delivery import (delivery_server, enqueue, fast_settings, statuses,
    wait_until_final)
from tests.support.events import alert_event, webhook_target

pytestmark = pytest.mark.timeout(60)


def test_500_500_200_is_delivered_on_the_third_attempt_on_the_default_schedule(db, receiver):
    settings = fast_settings(db.dsn, delivery_retry_delays=(1.0, 5.0, 30.0))
    receiver.script(Reply(500), Reply(500), Reply(200))
    with delivery_server(settings, db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids, timeout=12)
    first, second, third = receiver.wait_for(3)
    assert rows[ids[0]]["status"] == "success" and rows[ids[0]]["attempts"] == 3
    assert second.received_at - first.received_at == pytest.approx(1.0, abs=0.5)
    assert third.received_at - second.received_at == pytest.approx(5.0, abs=0.7)
    assert len(receiver.requests) == 3
    assert {r.header("webhook-id") for r in receiver.requests} == {rows[ids[0]]["idempotency_key"]}


def test_retry_spacing_follows_the_configured_delays(db, receiver):
    settings = fast_settings(db.dsn, delivery_retry_delays=(0.2, 1.0))
    receiver.script(Reply(503), Reply(502), Reply(200))
    with delivery_server(settings, db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        wait_until_final(db, ids)
    first, second, third = receiver.wait_for(3)
    short, long = second.received_at - first.received_at, third.received_at - second.received_at
    assert short >= 0.2 and long >= 1.0
    assert 3 <= long / short <= 7  # 1.0 / 0.2 = 5, with scheduling noise


def test_400_is_tried_once_and_fails(db, receiver):
    receiver.script(Reply(400, "bad payload"))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids)
        time.sleep(0.4)  # longer than the first retry delay: nothing more arrives
        listed = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(alert_id=1)).deliveries
    assert rows[ids[0]]["status"] == "failed" and rows[ids[0]]["attempts"] == 1
    assert len(receiver.requests) == 1
    assert listed[0].status == delivery_pb2.DELIVERY_STATUS_FAILED
    assert listed[0].last_response_code == 400 and listed[0].last_response_body == "bad payload"
    assert listed[0].attempts == 1 and listed[0].last_latency_ms >= 0


def test_retries_end_after_the_schedule(db, receiver):
    receiver.always(Reply(500))
    with delivery_server(fast_settings(db.dsn, delivery_retry_delays=(0.1, 0.1)), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids)
    assert rows[ids[0]]["status"] == "failed" and rows[ids[0]]["attempts"] == 3
    assert rows[ids[0]]["last_error"] == "HTTP 500"


def test_429_with_retry_after_is_retried_no_sooner_than_asked(db, receiver):
    receiver.script(Reply(429, headers={"Retry-After": "2"}), Reply(200))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids)
    first, second = receiver.wait_for(2)
    assert second.received_at - first.received_at >= 2.0
    assert rows[ids[0]]["status"] == "success"


def test_connection_refused_is_retryable(db, receiver):
    from tests.support.ports import free_port
    dead = f"http://127.0.0.1:{free_port()}/hook"
    with delivery_server(fast_settings(db.dsn, delivery_retry_delays=(0.1,)), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(dead)]).delivery_ids
        rows = wait_until_final(db, ids)
    assert rows[ids[0]]["attempts"] == 2
    assert "connection error" in rows[ids[0]]["last_error"]


def test_timeout_is_retryable(db, receiver):
    receiver.script(Reply(200, delay=1.0), Reply(200))
    settings = fast_settings(db.dsn, delivery_http_timeout_seconds=0.3,
                             delivery_retry_delays=(0.1,))
    with delivery_server(settings, db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids)
    assert rows[ids[0]]["status"] == "success" and rows[ids[0]]["attempts"] == 2


def test_redirects_are_not_followed(db, receiver):
    with WebhookReceiver() as elsewhere:
        receiver.script(Reply(302, headers={"Location": elsewhere.url}))
        with delivery_server(fast_settings(db.dsn), db) as stub:
            ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
            rows = wait_until_final(db, ids)
        assert elsewhere.requests == []
    assert rows[ids[0]]["status"] == "failed"


def test_webhook_carries_the_targets_headers_and_the_documented_body(db, receiver):
    with delivery_server(fast_settings(db.dsn), db) as stub:
        ids = enqueue(stub, alert_event(alert_id=5, kind="resolve"),
                      [webhook_target(receiver.url + "/hook", {"X-Team": "storage"})]).delivery_ids
        wait_until_final(db, ids)
    (request,) = receiver.wait_for(1)
    assert request.path == "/hook" and request.header("x-team") == "storage"
    assert request.header("content-type") == "application/json"
    body = request.json()
    assert set(body) == {"type", "alert", "service", "occurred_at", "run"}
    assert body["run"] is None  # not an alert about a job run
    assert body["type"] == "alert.resolved" and body["alert"]["alert_id"] == 5
    assert body["service"]["priority"] == "p2" and body["alert"]["closed_at"]


def test_enqueueing_the_same_event_twice_creates_nothing_new(db, receiver):
    with delivery_server(fast_settings(db.dsn), db) as stub:
        first = enqueue(stub, alert_event(), [webhook_target(receiver.url)])
        again = enqueue(stub, alert_event(), [webhook_target(receiver.url)])
        wait_until_final(db, first.delivery_ids)
        time.sleep(0.2)
    assert first.created and not again.created
    assert list(again.delivery_ids) == list(first.delivery_ids)
    assert len(receiver.requests) == 1


def test_notify_all_delivers_to_every_target_and_subscription(db):
    with WebhookReceiver() as a, WebhookReceiver() as b, WebhookReceiver() as sub:
        a.script(Reply(400))
        with delivery_server(fast_settings(db.dsn), db) as stub:
            ids = enqueue(stub, alert_event(), [webhook_target(a.url), webhook_target(b.url)],
                          [webhook_target(sub.url)]).delivery_ids
            rows = wait_until_final(db, ids)
        assert [rows[i]["status"] for i in ids] == ["failed", "success", "success"]
        assert (len(a.requests), len(b.requests), len(sub.requests)) == (1, 1, 1)


def test_until_success_tries_the_next_target_only_after_a_failure_for_good(db):
    with WebhookReceiver() as first, WebhookReceiver() as second, WebhookReceiver() as third, \
            WebhookReceiver() as sub:
        first.script(Reply(500), Reply(404))  # retryable, then permanent
        with delivery_server(fast_settings(db.dsn), db) as stub:
            ids = enqueue(stub, alert_event(),
                          [webhook_target(first.url), webhook_target(second.url),
                           webhook_target(third.url)], [webhook_target(sub.url)],
                          mode=common_pb2.NOTIFY_MODE_UNTIL_SUCCESS).delivery_ids
            rows = wait_until_final(db, ids)
        assert [rows[i]["status"] for i in ids] == ["failed", "success", "skipped", "success"]
        assert (len(first.requests), len(second.requests), len(third.requests)) == (2, 1, 0)
        # The subscription did not wait for the chain.
        assert sub.requests[0].received_at < second.requests[0].received_at
        assert second.requests[0].received_at > first.requests[1].received_at


def test_a_failed_delivery_can_be_retried_by_hand(db, receiver):
    receiver.script(Reply(410))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        (delivery_id,) = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        wait_until_final(db, [delivery_id])
        retried = stub.RetryDelivery(delivery_pb2.RetryDeliveryRequest(delivery_id=delivery_id))
        rows = wait_until_final(db, [delivery_id])
        with pytest.raises(grpc.RpcError) as succeeded:
            stub.RetryDelivery(delivery_pb2.RetryDeliveryRequest(delivery_id=delivery_id))
        with pytest.raises(grpc.RpcError) as missing:
            stub.RetryDelivery(delivery_pb2.RetryDeliveryRequest(delivery_id=999))
    assert retried.delivery.status == delivery_pb2.DELIVERY_STATUS_PENDING
    assert rows[delivery_id]["status"] == "success" and rows[delivery_id]["attempts"] == 2
    assert succeeded.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_loopback_destination_is_refused_at_send_time_without_allow_private(db, receiver):
    with delivery_server(fast_settings(db.dsn, webhook_allow_private=False), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids)
    assert rows[ids[0]]["status"] == "failed" and "refused" in rows[ids[0]]["last_error"]
    assert receiver.requests == []


def test_a_slow_receiver_does_not_delay_deliveries_to_others(db):
    with WebhookReceiver() as slow, WebhookReceiver() as fast:
        slow.always(Reply(200, delay=3.0))
        settings = fast_settings(db.dsn, delivery_workers=6, delivery_per_destination=2)
        with delivery_server(settings, db) as stub:
            slow_ids = []
            for n in range(60):  # a backlog far longer than one claim looks at
                slow_ids += enqueue(stub, alert_event(100 + n),
                                    [webhook_target(slow.url)]).delivery_ids
            time.sleep(0.3)  # the slow receiver's share of workers is busy now
            started = time.monotonic()
            fast_ids = [enqueue(stub, alert_event(200 + n), [webhook_target(fast.url)]).delivery_ids[0]
                        for n in range(5)]
            fast.wait_for(5, timeout=2.5)
            elapsed = time.monotonic() - started
            in_flight_to_slow = len(slow.requests)
            assert all(r["status"] == "success" for r in wait_until_final(db, fast_ids).values())
    assert elapsed < 2.5
    assert in_flight_to_slow == 2  # capped per destination, the other workers stayed free


def test_invalid_plans_are_rejected(db):
    with delivery_server(fast_settings(db.dsn), db) as stub:
        bad = [
            delivery_pb2.EnqueueNotificationsRequest(event=alert_event(), mode=common_pb2.NOTIFY_MODE_ALL,
                                                     targets=[delivery_pb2.PlannedTarget()]),
            delivery_pb2.EnqueueNotificationsRequest(event=alert_event(),
                                                     mode=common_pb2.NOTIFY_MODE_UNSPECIFIED),
            delivery_pb2.EnqueueNotificationsRequest(mode=common_pb2.NOTIFY_MODE_ALL),
            delivery_pb2.EnqueueNotificationsRequest(
                event=alert_event(), mode=common_pb2.NOTIFY_MODE_ALL,
                targets=[delivery_pb2.PlannedTarget(type=delivery_pb2.TARGET_TYPE_SLACK)]),
        ]
        for request in bad:
            with pytest.raises(grpc.RpcError) as err:
                stub.EnqueueNotifications(request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(limit=5000))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert statuses(db, range(1, 10)) == {}


def test_graceful_stop_releases_unfinished_deliveries(db, receiver):
    from medic.server import create_server
    from tests.support.authorizers import AllowAll
    from services.delivery import app as delivery_app
    receiver.script(Reply(200, delay=2.0))
    settings = fast_settings(db.dsn)
    running = create_server(delivery_app.build(settings, db=db), port=0, workers=4, authorizer=AllowAll())
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    from medic.v1 import delivery_pb2_grpc
    stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
    ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
    receiver.wait_for(1)
    channel.close()
    running.component.on_stop[0](0.1)  # stop the workers with a short grace
    row = db.one("SELECT status, next_attempt_at <= now() AS due FROM deliveries "
                 "WHERE delivery_id = %s", (ids[0],))
    assert row == {"status": "pending", "due": True}
    running.server.stop(0)


def test_deliveries_are_listed_by_alert_service_target_webhook_and_status(db):
    with WebhookReceiver() as ok, WebhookReceiver() as bad:
        bad.always(Reply(404))
        with delivery_server(fast_settings(db.dsn), db) as stub:
            a = enqueue(stub, alert_event(1, service_id=7),
                        [webhook_target(ok.url, target_id=11)]).delivery_ids
            hook_id = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(url=ok.url)).webhook.webhook_id
            b = enqueue(stub, alert_event(2, service_id=8),
                        [webhook_target(bad.url, target_id=12)],
                        [webhook_target(ok.url, webhook_id=hook_id)]).delivery_ids
            wait_until_final(db, list(a) + list(b))

            def listed(**filters):
                return [d.delivery_id for d in stub.ListDeliveries(
                    delivery_pb2.ListDeliveriesRequest(**filters)).deliveries]

            assert listed() == [b[1], b[0], a[0]]  # newest first
            assert listed(alert_id=2) == [b[1], b[0]]
            assert listed(service_id=7) == [a[0]]
            assert listed(target_id=12) == [b[0]]
            assert listed(webhook_id=hook_id) == [b[1]]
            assert listed(status=delivery_pb2.DELIVERY_STATUS_FAILED) == [b[0]]
            assert listed(limit=1) == [b[1]]
            (shown,) = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(target_id=11)).deliveries
    assert shown.type == delivery_pb2.TARGET_TYPE_WEBHOOK and shown.destination == ok.url
    assert shown.kind == 1 and shown.event_id == "alert-1-trigger" and shown.attempts == 1
    assert shown.last_response_code == 200 and shown.HasField("last_attempt_at")
    assert not shown.HasField("next_attempt_at")


def test_outcomes_are_counted_by_type_and_status(db, receiver):
    from prometheus_client import REGISTRY

    def count(status):
        return REGISTRY.get_sample_value("medic_deliveries_total",
                                         {"type": "webhook", "status": status}) or 0

    before = {s: count(s) for s in ("success", "failed", "retrying")}
    receiver.script(Reply(500), Reply(200), Reply(400))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        ids = enqueue(stub, alert_event(1), [webhook_target(receiver.url)]).delivery_ids
        wait_until_final(db, ids)
        ids = enqueue(stub, alert_event(2), [webhook_target(receiver.url)]).delivery_ids
        wait_until_final(db, ids)
    assert {s: count(s) - before[s] for s in before} == {"success": 1, "failed": 1, "retrying": 1}


def test_outcomes_recorded_in_one_batch_honour_claim_tokens_and_chains(db):
    """The recorder writes many outcomes at once: an outcome whose claim was taken
    over after its lease is dropped (the new holder's attempt counts), and a
    chain's next target becomes due when its predecessor failed for good."""
    from services.delivery.outbox import Attempt, OutboxStore
    from services.delivery.planning import plan_deliveries
    from services.delivery.servicer import event_to_domain, targets_to_domain

    store = OutboxStore(db)
    alone = event_to_domain(alert_event(alert_id=71))
    store.enqueue(alone, "all", plan_deliveries(
        alone, "all", targets_to_domain([webhook_target("http://a.example/h")], [])))
    chained = event_to_domain(alert_event(alert_id=72))
    chain_ids, _ = store.enqueue(chained, "until_success", plan_deliveries(
        chained, "until_success",
        targets_to_domain([webhook_target("http://b.example/h"), webhook_target("http://c.example/h")], [])))
    first = {r["delivery_id"]: r for r in store.claim_due(10, 60.0, lambda _key: 10)}
    assert chain_ids[1] not in first  # waits for the first target of its chain
    alone_id = next(i for i in first if i not in chain_ids)
    # alone's lease ends and another worker claims it again (a new token).
    db.execute("UPDATE deliveries SET next_attempt_at = now() WHERE delivery_id = %s", (alone_id,))
    [again] = store.claim_due(10, 60.0, lambda _key: 10)
    assert again["delivery_id"] == alone_id and again["claim_token"] != first[alone_id]["claim_token"]

    recorded = store.record_attempts([
        Attempt(alone_id, first[alone_id]["claim_token"], "success", None, 200, "", "", 5),
        Attempt(chain_ids[0], first[chain_ids[0]]["claim_token"], "failed", None, 400, "no", "HTTP 400", 7),
    ])
    assert set(recorded) == {chain_ids[0]}
    rows = {r["delivery_id"]: r for r in db.all(
        "SELECT delivery_id, status, claim_token::text AS token, next_attempt_at <= now() AS due"
        " FROM deliveries")}
    assert rows[alone_id]["status"] == "pending" and rows[alone_id]["token"] == again["claim_token"]
    assert rows[chain_ids[0]]["status"] == "failed"
    assert rows[chain_ids[1]]["due"] is True  # the next target of the chain is due now


def test_events_waiting_for_their_trigger_do_not_hide_other_due_deliveries(db):
    """A RESOLVE waits while its TRIGGER to the same place is retrying; hundreds of
    such waiting rows, older than everything else, must not stop other claims."""
    from services.delivery.outbox import OutboxStore
    from services.delivery.planning import plan_deliveries
    from services.delivery.servicer import event_to_domain, targets_to_domain

    store = OutboxStore(db)
    for alert_id in range(1, 301):
        for kind in ("trigger", "resolve"):
            event = event_to_domain(alert_event(alert_id, kind))
            store.enqueue(event, "all", plan_deliveries(
                event, "all", targets_to_domain([webhook_target("http://slow.example/h")], [])))
    db.execute("UPDATE deliveries SET status = 'retrying', next_attempt_at = now() + interval '5 minutes' "
               "WHERE kind = 'trigger'")
    db.execute("UPDATE deliveries SET next_attempt_at = now() - interval '1 minute' WHERE kind = 'resolve'")
    healthy = event_to_domain(alert_event(1000))
    ids, _ = store.enqueue(healthy, "all", plan_deliveries(
        healthy, "all", targets_to_domain([webhook_target("http://ok.example/h")], [])))

    assert [r["delivery_id"] for r in store.claim_due(1, 60.0, lambda _key: 10)] == ids


def test_a_response_body_with_nul_characters_is_recorded_without_them(db, receiver):
    receiver.script(Reply(200, "accepted\x00\x00 fine"))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, ids)
        [listed] = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(alert_id=1)).deliveries
    assert rows[ids[0]]["status"] == "success" and rows[ids[0]]["attempts"] == 1
    assert listed.last_response_body == "accepted fine"


def test_a_huge_response_is_read_only_in_part_and_the_next_delivery_still_goes_out(db, receiver):
    receiver.script(Reply(200, "x" * (1024 * 1024)), Reply(200, "second"))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        first = enqueue(stub, alert_event(1), [webhook_target(receiver.url)]).delivery_ids
        rows = wait_until_final(db, first)
        second = enqueue(stub, alert_event(2), [webhook_target(receiver.url)]).delivery_ids
        rows.update(wait_until_final(db, second))
        listed = {d.delivery_id: d.last_response_body for d in stub.ListDeliveries(
            delivery_pb2.ListDeliveriesRequest(service_id=0)).deliveries}
    assert [rows[i]["status"] for i in (*first, *second)] == ["success", "success"]
    assert len(listed[first[0]]) == 4096 and listed[second[0]] == "second"


def test_a_claim_that_loses_its_rows_to_another_worker_takes_the_next_ones(db):
    """Claims read candidates without locks and lock only the rows they choose: when
    another worker claims those first, the claim looks again past them instead of
    coming back empty (its worker would idle until the next poll)."""
    from services.delivery.outbox import OutboxStore
    from services.delivery.planning import plan_deliveries
    from services.delivery.servicer import event_to_domain, targets_to_domain

    store, other = OutboxStore(db), OutboxStore(db)
    for alert_id in range(1, 11):
        event = event_to_domain(alert_event(alert_id))
        store.enqueue(event, "all", plan_deliveries(
            event, "all", targets_to_domain([webhook_target(f"http://h{alert_id}.example/h")], [])))
    taken_first: list[int] = []

    def room(_key):
        # Runs between this claim's reading of the candidates and its locking:
        # another worker claims the four oldest in the meantime.
        if not taken_first:
            taken_first.extend(r["delivery_id"] for r in other.claim_due(4, 60.0, lambda _k: 10))
        return 10

    mine = [r["delivery_id"] for r in store.claim_due(4, 60.0, room)]
    assert len(taken_first) == 4 and len(mine) == 4
    assert not set(mine) & set(taken_first)
    oldest = [r["delivery_id"] for r in db.all("SELECT delivery_id FROM deliveries ORDER BY delivery_id")]
    assert sorted(taken_first + mine) == oldest[:8]


def test_the_delivery_log_filters_by_target_type_and_creation_time(db, receiver):
    from google.protobuf.timestamp_pb2 import Timestamp

    receiver.always(Reply(200))
    with delivery_server(fast_settings(db.dsn), db) as stub:
        ids = enqueue(stub, alert_event(), [webhook_target(receiver.url)]).delivery_ids
        wait_until_final(db, ids)
        webhooks = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(
            type=delivery_pb2.TARGET_TYPE_WEBHOOK)).deliveries
        slack = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(type=delivery_pb2.TARGET_TYPE_SLACK))
        later = Timestamp()
        later.FromSeconds(int(time.time()) + 60)
        future = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(created_after=later))
        earlier = Timestamp()
        earlier.FromSeconds(int(time.time()) - 60)
        recent = stub.ListDeliveries(delivery_pb2.ListDeliveriesRequest(created_after=earlier))
    assert [d.delivery_id for d in webhooks] == ids
    assert list(slack.deliveries) == [] and list(future.deliveries) == []
    assert [d.delivery_id for d in recent.deliveries] == ids
