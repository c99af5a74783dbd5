"""Deliveries and webhook subscriptions over HTTP, through the gateway in front of
the whole stack: a failed delivery retried by hand (POST /v2/deliveries/<id>/retry)
goes out again and succeeds; a subscription's secret can be removed (PATCH
/v2/webhooks/<id> with an empty secret) and its deliveries then go out unsigned."""
from __future__ import annotations

import pytest

from tests.support.receivers import Reply, WebhookReceiver
from tests.support.delivery import enqueue_in_stack, failed_delivery_in_stack, wait_until_final
from tests.support.events import alert_event, webhook_target

pytestmark = pytest.mark.timeout(60)


def test_a_failed_delivery_retried_over_http_goes_out_again_and_succeeds(stack, http, db):
    with WebhookReceiver() as hook:
        hook.script(Reply(410))  # fails for good; the receiver answers 200 from then on
        delivery_id = failed_delivery_in_stack(stack, db, hook.url + "/hook")

        retried = http.post(f"/v2/deliveries/{delivery_id}/retry")
        row = wait_until_final(db, [delivery_id])[delivery_id]
        listed = http.get("/v2/deliveries", params={"status": "success"}).json()["results"]
        copies = hook.requests

    assert retried.status_code == 200, retried.text
    assert retried.json()["results"]["delivery_id"] == delivery_id
    assert retried.json()["results"]["status"] == "pending"
    assert (row["status"], row["attempts"], row["last_response_code"]) == ("success", 2, 200)
    assert [(d["delivery_id"], d["status"], d["attempts"]) for d in listed] == [(delivery_id, "success", 2)]
    assert len(copies) == 2 and copies[1].header("webhook-id") == copies[0].header("webhook-id")


def test_a_webhook_secret_removed_over_http_leaves_its_deliveries_unsigned(stack, http, db):
    with WebhookReceiver() as hook:
        created = http.post("/v2/webhooks", json={"url": hook.url + "/hook", "service_id": 7})
        webhook_id = created.json()["results"]["webhook"]["webhook_id"]
        removed = http.patch(f"/v2/webhooks/{webhook_id}", json={"secret": ""})
        listed = http.get("/v2/webhooks").json()["results"]
        ids = enqueue_in_stack(stack, alert_event(), subscriptions=[
            webhook_target(hook.url + "/hook", webhook_id=webhook_id)])
        row = wait_until_final(db, ids)[ids[0]]
        (request,) = hook.wait_for(1)
    assert created.status_code == 201 and created.json()["results"]["webhook"]["has_secret"] is True
    assert removed.status_code == 200, removed.text
    assert removed.json()["results"]["has_secret"] is False
    assert [w["has_secret"] for w in listed] == [False]
    assert row["status"] == "success"
    assert request.header("webhook-id") == row["idempotency_key"]
    assert request.header("webhook-signature") is None and request.header("webhook-timestamp") is None
