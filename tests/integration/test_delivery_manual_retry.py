"""A failed delivery retried by hand over HTTP (POST /v2/deliveries/<id>/retry),
through the gateway in front of the whole stack, goes out again and succeeds."""
from __future__ import annotations

import pytest

from tests.fakes import Reply, WebhookReceiver
from tests.integration.delivery_support import failed_delivery_in_stack, wait_until_final

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
