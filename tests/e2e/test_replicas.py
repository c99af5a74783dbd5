"""`medic up --replicas 2`: two of every process, balanced, rate limits in Redis."""
from __future__ import annotations

import time

import pytest
import requests

from tests.support.system import start_medic
from tests.support.receivers import PagerDutyReceiver, WebhookReceiver

pytestmark = pytest.mark.e2e


def test_two_replicas_of_everything_work_together_without_duplicates(tmp_path, database_url, redis_url):
    with WebhookReceiver() as webhook, PagerDutyReceiver() as pagerduty:
        medic = start_medic(tmp_path, database_url, args=("--replicas", "2"), timeout=180, extra_env={
            "MEDIC_REDIS_URL": redis_url, "MEDIC_WEBHOOK_ALLOW_PRIVATE": "true",
            "MEDIC_PAGERDUTY_EVENTS_URL": pagerduty.events_url, "MEDIC_MONITOR_TICK_SECONDS": "0.2"})
        try:
            port = int(medic.env["MEDIC_GATEWAY_PORT"])
            gateways = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
            output = "".join(medic.output)
            assert output.count("127.0.0.1:") >= 10 and "rate limits in Redis" in output
            admin = requests.Session()
            admin.headers["Authorization"] = f"Bearer {medic.admin_key}"
            assert admin.post(gateways[1] + "/v2/webhooks", json={"url": webhook.url + "/all"},
                              timeout=10).status_code == 201
            for n in range(20):
                body = {"heartbeat_name": f"svc-{n}", "service_name": "r", "alert_interval_seconds": 3}
                service = admin.post(gateways[n % 2] + "/service", json=body, timeout=10).json()["results"][0]
                target = {"service_id": service["service_id"], "type": "pagerduty", "config": {"routing_key": f"K{n}"}}
                assert admin.post(gateways[(n + 1) % 2] + "/v2/notification-targets", json=target,
                                  timeout=10).status_code == 201
                assert admin.post(gateways[n % 2] + "/heartbeat", json={"heartbeat_name": f"svc-{n}", "status": "UP"},
                                  timeout=10).status_code == 201

            # A key limited to 10 heartbeats a minute gets exactly 10 through both gateways together.
            # They go to a service of their own that does not go down during the test: sent to
            # svc-0 on a loaded machine, they could arrive after its alert and resolve it (an
            # event more for the webhook, an active alert less).
            assert admin.post(gateways[0] + "/service", timeout=10, json={
                "heartbeat_name": "limited", "service_name": "r", "alert_interval_seconds": 3600}).status_code == 201
            key = admin.post(gateways[0] + "/v2/api-keys", timeout=10, json={
                "name": "limited", "scopes": ["write"], "rate_limits": {"heartbeat_per_minute": 10}}).json()
            limited = {"Authorization": f"Bearer {key['results']['key']}"}
            statuses = [requests.post(gateways[n % 2] + "/heartbeat", headers=limited, timeout=10,
                                      json={"heartbeat_name": "limited", "status": "UP"}).status_code
                        for n in range(20)]
            assert statuses.count(201) == 10 and statuses.count(429) == 10

            hooks = webhook.wait_for(20, timeout=60)
            events = pagerduty.wait_for(20, timeout=60)
            time.sleep(2)  # room for duplicates to show up
            assert len(webhook.requests) == 20 and len(pagerduty.requests) == 20
            assert len({h.header("webhook-id") for h in hooks}) == 20
            assert sorted(e.json()["routing_key"] for e in events) == sorted(f"K{n}" for n in range(20))
            active = admin.get(gateways[0] + "/alerts", params={"active": 1}, timeout=10).json()["results"]
            assert len(active) == 20
        finally:
            medic.stop()
