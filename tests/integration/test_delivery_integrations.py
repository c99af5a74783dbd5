"""Slack, PagerDuty and webhook subscriptions end to end against local receivers,
and the webhook subscription RPCs."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import grpc
import pytest

from medic.v1 import common_pb2, delivery_pb2
from tests.support.receivers import PagerDutyReceiver, Reply, SlackReceiver, WebhookReceiver, slack_error
from tests.support.delivery import delivery_server, enqueue, fast_settings, wait_until_final
from tests.support.events import alert_event, pagerduty_target, slack_target, webhook_target

pytestmark = pytest.mark.timeout(60)


def verify_standard_webhook(secret: str, msg_id: str, timestamp: str, body: bytes,
                            signature_header: str, tolerance: int = 300) -> bool:
    """Standard Webhooks verification, written from the spec (independent of Medic's code)."""
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    to_sign = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest())
    for versioned in signature_header.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


def test_slack_gets_chat_post_message_with_the_bot_token(db):
    with SlackReceiver() as slack:
        settings = fast_settings(db.dsn, slack_api_url=slack.url + "/api")
        with delivery_server(settings, db) as stub:
            ids = enqueue(stub, alert_event(), [slack_target("C042")]).delivery_ids
            rows = wait_until_final(db, ids)
        (request,) = slack.wait_for(1)
    assert rows[ids[0]]["status"] == "success"
    assert request.path == "/api/chat.postMessage"
    assert request.header("authorization") == "Bearer xoxb-test-token"
    body = request.json()
    assert set(body) == {"channel", "text", "blocks"} and body["channel"] == "C042"


def test_slack_ok_false_with_a_permanent_error_fails_at_once(db):
    with SlackReceiver() as slack:
        slack.script(slack_error("channel_not_found"))
        with delivery_server(fast_settings(db.dsn, slack_api_url=slack.url), db) as stub:
            ids = enqueue(stub, alert_event(), [slack_target("C404")]).delivery_ids
            rows = wait_until_final(db, ids)
    assert rows[ids[0]]["status"] == "failed" and rows[ids[0]]["attempts"] == 1
    assert rows[ids[0]]["last_error"] == "slack: channel_not_found"


def test_slack_ratelimited_is_retried(db):
    with SlackReceiver() as slack:
        slack.script(Reply(429, headers={"Retry-After": "0"}), slack_error("internal_error"))
        with delivery_server(fast_settings(db.dsn, slack_api_url=slack.url,
                                           delivery_retry_delays=(0.1, 0.1)), db) as stub:
            ids = enqueue(stub, alert_event(), [slack_target("C1")]).delivery_ids
            rows = wait_until_final(db, ids)
    assert rows[ids[0]]["status"] == "success" and rows[ids[0]]["attempts"] == 3


def test_pagerduty_trigger_and_resolve_share_the_dedup_key(db):
    with PagerDutyReceiver() as pd:
        settings = fast_settings(db.dsn, pagerduty_events_url=pd.events_url)
        with delivery_server(settings, db) as stub:
            trigger = enqueue(stub, alert_event(9, "trigger", priority=common_pb2.PRIORITY_P1),
                              [pagerduty_target("rk-1")]).delivery_ids
            resolve = enqueue(stub, alert_event(9, "resolve", priority=common_pb2.PRIORITY_P1),
                              [pagerduty_target("rk-1")]).delivery_ids
            wait_until_final(db, list(trigger) + list(resolve))
        first, second = pd.wait_for(2)
    events = [first.json(), second.json()]  # in order: the resolve waited for the trigger
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"] == "medic-alert-9"
    assert events[0]["routing_key"] == "rk-1"
    assert events[0]["payload"]["severity"] == "critical"
    assert first.path == "/v2/enqueue"


def test_pagerduty_400_is_permanent(db):
    with PagerDutyReceiver() as pd:
        pd.script(Reply(400, {"status": "invalid event"}))
        with delivery_server(fast_settings(db.dsn, pagerduty_events_url=pd.events_url), db) as stub:
            ids = enqueue(stub, alert_event(), [pagerduty_target("rk")]).delivery_ids
            rows = wait_until_final(db, ids)
    assert rows[ids[0]]["status"] == "failed" and rows[ids[0]]["attempts"] == 1
    assert rows[ids[0]]["last_response_code"] == 400


def test_subscription_is_signed_and_verifies_with_an_independent_implementation(db):
    with WebhookReceiver() as hook:
        with delivery_server(fast_settings(db.dsn), db) as stub:
            created = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
                url=hook.url + "/medic", service_id=7, headers={"X-Env": "test"}))
            webhook = created.webhook
            ids = enqueue(stub, alert_event(), [], [webhook_target(
                webhook.url, dict(webhook.headers), webhook_id=webhook.webhook_id)]).delivery_ids
            rows = wait_until_final(db, ids)
        (request,) = hook.wait_for(1)
    assert rows[ids[0]]["status"] == "success"
    assert created.secret.startswith("whsec_") and webhook.has_secret
    assert request.header("x-env") == "test"
    assert request.header("webhook-id") == rows[ids[0]]["idempotency_key"]
    assert verify_standard_webhook(created.secret, request.header("webhook-id"),
                                   request.header("webhook-timestamp"), request.body,
                                   request.header("webhook-signature"))
    assert not verify_standard_webhook(created.secret, request.header("webhook-id"),
                                       request.header("webhook-timestamp"), request.body + b"x",
                                       request.header("webhook-signature"))


def test_subscription_signature_verifies_with_the_standardwebhooks_package(db):
    standardwebhooks = pytest.importorskip("standardwebhooks")
    with WebhookReceiver() as hook:
        with delivery_server(fast_settings(db.dsn), db) as stub:
            created = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(url=hook.url))
            ids = enqueue(stub, alert_event(), [], [webhook_target(
                hook.url, webhook_id=created.webhook.webhook_id)]).delivery_ids
            wait_until_final(db, ids)
        (request,) = hook.wait_for(1)
    standardwebhooks.Webhook(created.secret).verify(request.body, request.headers)


def test_a_removed_secret_leaves_deliveries_unsigned_and_a_new_one_signs_them_again(db):
    new_secret = "whsec_" + base64.b64encode(b"n" * 32).decode()
    with WebhookReceiver() as hook:
        with delivery_server(fast_settings(db.dsn), db) as stub:
            webhook_id = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
                url=hook.url, service_id=7)).webhook.webhook_id

            def update(**fields):
                return stub.UpdateWebhook(delivery_pb2.UpdateWebhookRequest(
                    webhook_id=webhook_id, **fields)).webhook

            def deliver(alert_id):
                ids = enqueue(stub, alert_event(alert_id), [],
                              [webhook_target(hook.url, webhook_id=webhook_id)]).delivery_ids
                return wait_until_final(db, ids)[ids[0]]

            removed = update(secret="")
            still_removed = update(enabled=True)  # no secret in the update: left as it is
            unsigned = deliver(1)
            resigned = update(secret=new_secret)
            signed = deliver(2)
        first, second = hook.wait_for(2)
    assert not removed.has_secret and not still_removed.has_secret and resigned.has_secret
    assert unsigned["status"] == "success" and signed["status"] == "success"
    assert first.header("webhook-id") == unsigned["idempotency_key"]  # still there, for dedup
    assert first.header("webhook-signature") is None and first.header("webhook-timestamp") is None
    assert verify_standard_webhook(new_secret, second.header("webhook-id"),
                                   second.header("webhook-timestamp"), second.body,
                                   second.header("webhook-signature"))


def test_a_deleted_subscription_is_not_delivered(db):
    with WebhookReceiver() as hook:
        with delivery_server(fast_settings(db.dsn), db) as stub:
            webhook = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(url=hook.url)).webhook
            stub.DeleteWebhook(delivery_pb2.DeleteWebhookRequest(webhook_id=webhook.webhook_id))
            ids = enqueue(stub, alert_event(), [], [webhook_target(
                hook.url, webhook_id=webhook.webhook_id)]).delivery_ids
            rows = wait_until_final(db, ids)
        assert hook.requests == []
    assert rows[ids[0]]["status"] == "failed"
    assert rows[ids[0]]["last_error"] == "webhook subscription deleted"


def test_webhook_subscriptions_crud_and_the_ones_a_service_receives(db):
    with delivery_server(fast_settings(db.dsn), db) as stub:
        own = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/own", service_id=7)).webhook
        secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
        glob = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/global", secret=secret))
        other = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/other", service_id=8)).webhook
        disabled = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/off", enabled=False)).webhook

        def for_service(service_id):
            return [w.webhook_id for w in stub.ListWebhooksForService(
                delivery_pb2.ListWebhooksForServiceRequest(service_id=service_id)).webhooks]

        assert glob.secret == secret and not glob.webhook.HasField("service_id")
        assert for_service(7) == [own.webhook_id, glob.webhook.webhook_id]
        assert len(stub.ListWebhooks(delivery_pb2.ListWebhooksRequest()).webhooks) == 4
        assert [w.webhook_id for w in stub.ListWebhooks(
            delivery_pb2.ListWebhooksRequest(service_id=8)).webhooks] == [other.webhook_id]

        updated = stub.UpdateWebhook(delivery_pb2.UpdateWebhookRequest(
            webhook_id=other.webhook_id, service_id=0,
            headers=delivery_pb2.WebhookHeaders(values={"X-A": "1"}))).webhook
        assert not updated.HasField("service_id") and dict(updated.headers) == {"X-A": "1"}
        assert updated.url == other.url
        stub.UpdateWebhook(delivery_pb2.UpdateWebhookRequest(webhook_id=disabled.webhook_id,
                                                             enabled=True))
        assert for_service(7) == [own.webhook_id, glob.webhook.webhook_id, other.webhook_id,
                                  disabled.webhook_id]
        stub.DeleteWebhook(delivery_pb2.DeleteWebhookRequest(webhook_id=own.webhook_id))
        assert own.webhook_id not in for_service(7)

        for call, request in [
            (stub.DeleteWebhook, delivery_pb2.DeleteWebhookRequest(webhook_id=own.webhook_id)),
            (stub.UpdateWebhook, delivery_pb2.UpdateWebhookRequest(webhook_id=999, enabled=False)),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                call(request)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("request_fields", [
    {"url": "ftp://example.com/x"},
    {"url": ""},
    {"url": "http://127.0.0.1:9/", "secret": "not-a-secret"},
    {"url": "http://127.0.0.1:9/", "headers": {"webhook-signature": "forged"}},
    {"url": "http://127.0.0.1:9/", "headers": {"X-Bad": "a\r\nInjected: 1"}},
    {"url": "http://127.0.0.1:9/", "service_id": 0},
])
def test_invalid_webhooks_are_rejected(db, request_fields):
    with delivery_server(fast_settings(db.dsn), db) as stub:
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(**request_fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost/hook",
                                 "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/",
                                 "http://[::1]/"])
def test_private_destinations_are_refused_at_creation_without_allow_private(db, url):
    with delivery_server(fast_settings(db.dsn, webhook_allow_private=False), db) as stub:
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(url=url))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "refused" in err.value.details()


def test_a_resolve_waits_for_the_trigger_still_in_retry_to_the_same_destination(db):
    with PagerDutyReceiver() as pd:
        pd.script(Reply(500), Reply(503))
        settings = fast_settings(db.dsn, pagerduty_events_url=pd.events_url,
                                 delivery_retry_delays=(0.2, 0.2))
        with delivery_server(settings, db) as stub:
            trigger = enqueue(stub, alert_event(3, "trigger"), [pagerduty_target("rk")]).delivery_ids
            pd.wait_for(1)
            resolve = enqueue(stub, alert_event(3, "resolve"), [pagerduty_target("rk")]).delivery_ids
            rows = wait_until_final(db, list(trigger) + list(resolve))
    assert [r.json()["event_action"] for r in pd.requests] == ["trigger"] * 3 + ["resolve"]
    assert all(r["status"] == "success" for r in rows.values())


def test_subscriptions_of_several_services_come_in_the_order_asked(db):
    with delivery_server(fast_settings(db.dsn), db) as stub:
        own = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/own", service_id=7)).webhook
        glob = stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(url="http://127.0.0.1:9/all")).webhook
        stub.CreateWebhook(delivery_pb2.CreateWebhookRequest(url="http://127.0.0.1:9/off", enabled=False))

        services = stub.ListWebhooksForServices(
            delivery_pb2.ListWebhooksForServicesRequest(service_ids=[8, 7])).services

        assert [(s.service_id, [w.webhook_id for w in s.webhooks]) for s in services] == [
            (8, [glob.webhook_id]), (7, [own.webhook_id, glob.webhook_id])]
        for service_ids in ([], [7, 0], list(range(1, 258))):
            with pytest.raises(grpc.RpcError) as info:
                stub.ListWebhooksForServices(
                    delivery_pb2.ListWebhooksForServicesRequest(service_ids=service_ids))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_batch_of_plans_is_stored_once_each_and_an_invalid_one_fails_alone(db):
    with WebhookReceiver() as hook, delivery_server(fast_settings(db.dsn), db) as stub:
        def request(alert_id, target):
            return delivery_pb2.EnqueueNotificationsRequest(
                event=alert_event(alert_id), mode=common_pb2.NOTIFY_MODE_ALL, targets=[target])

        no_url = delivery_pb2.PlannedTarget(type=delivery_pb2.TARGET_TYPE_WEBHOOK)
        batch = delivery_pb2.EnqueueNotificationsBatchRequest(requests=[
            request(51, webhook_target(hook.url)), request(52, no_url), request(53, webhook_target(hook.url))])

        first = stub.EnqueueNotificationsBatch(batch).results
        again = stub.EnqueueNotificationsBatch(batch).results

        assert [r.code for r in first] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0]
        assert "config.url" in first[1].message
        assert [r.response.created for r in first] == [True, False, True]
        assert [r.response.created for r in again] == [False, False, False]
        assert [list(r.response.delivery_ids) for r in again] == [
            list(r.response.delivery_ids) for r in first]
        hook.wait_for(2)
        time.sleep(0.3)  # a duplicate would arrive now
        assert sorted(r.json()["alert"]["alert_id"] for r in hook.requests) == [51, 53]
