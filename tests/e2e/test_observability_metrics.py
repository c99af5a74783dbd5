"""Every metric the Grafana dashboard and the alerting rules read is exported by a real
`medic up` after a short workload: heartbeats, an alert opened by a failing heartbeat,
delivered to a local Slack and resolved, a rejected key, rate-limited requests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.system import start_medic
from tests.support.receivers import SlackReceiver
from tests.support.promql import metric_names, scraped_names
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Declared by every process but sampled only when something goes wrong that this workload
# does not provoke.
NOT_SAMPLED_BY_THE_WORKLOAD = {
    "medic_redis_errors_total",  # medic up runs without Redis here (a failed Redis call)
}


def used_names() -> dict[str, set[str]]:
    """{metric: where it is used}."""
    used: dict[str, set[str]] = {}
    groups = yaml.safe_load((REPO / "deploy/prometheus/medic-rules.yml").read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"rule {rule['alert']}")
    for panel in json.loads((REPO / "deploy/grafana/medic.json").read_text())["panels"]:
        for target in panel.get("targets", []):
            for name in metric_names(target["expr"]):
                used.setdefault(name, set()).add(f"panel {panel['title']}")
    return used


@pytest.fixture
def slack():
    with SlackReceiver() as receiver:
        yield receiver


def test_every_metric_of_the_dashboard_and_the_rules_is_exported(tmp_path, database_url, slack):
    medic = start_medic(tmp_path, database_url, extra_env={
        "MEDIC_SLACK_API_URL": slack.url, "MEDIC_SLACK_TOKEN": "xoxb-metrics",
        "MEDIC_SLACK_DEFAULT_CHANNEL": "CMETRICS", "MEDIC_MONITOR_TICK_SECONDS": "0.2",
        "MEDIC_HANDOFF_POLL_SECONDS": "0.1"})
    try:
        http = requests.Session()
        http.headers.update(medic.auth_header)
        url = medic.gateway_url
        assert http.post(url + "/service", json={"heartbeat_name": "metrics-job", "service_name": "metrics-job",
                                                  "alert_interval_seconds": 60}).status_code in (200, 201)
        for _ in range(20):
            assert http.post(url + "/heartbeat", json={"heartbeat_name": "metrics-job", "status": "UP"}).status_code == 201
        # A reported failure opens an alert; its TRIGGER goes to the default Slack channel.
        assert http.post(url + "/heartbeat", json={"heartbeat_name": "metrics-job",
                                                   "status": "FAILED"}).status_code == 201
        slack.wait_for(1, timeout=30)
        assert http.post(url + "/heartbeat", json={"heartbeat_name": "metrics-job", "status": "UP"}).status_code == 201
        slack.wait_for(2, timeout=30)  # the RESOLVE
        # A wrong key, and management requests past the limit.
        bad = requests.get(url + "/v2/teams", headers={"Authorization": "Bearer mdk_nope_nope"})
        assert bad.status_code == 401
        limited = http.post(url + "/v2/api-keys", json={"name": "limited", "scopes": ["read"],
                                                         "rate_limits": {"management_per_minute": 2}})
        assert limited.status_code in (200, 201), limited.text
        key = {"Authorization": f"Bearer {limited.json()['results']['key']}"}
        statuses = [requests.get(url + "/v2/teams", headers=key).status_code for _ in range(4)]
        assert 429 in statuses

        endpoints = [url + "/metrics"] + [
            f"http://127.0.0.1:{medic.env[f'MEDIC_{name}_METRICS_PORT']}/metrics"
            for name in ("AUTH", "HEARTBEAT", "ROUTING", "DELIVERY", "REMEDIATION")]

        def scrape() -> tuple[set[str], set[str]]:
            sampled, declared = set(), set()
            for endpoint in endpoints:
                response = requests.get(endpoint, timeout=10)
                assert response.status_code == 200, endpoint
                got_sampled, got_declared = scraped_names(response.text)
                sampled |= got_sampled
                declared |= got_declared
            return sampled, declared

        used = used_names()
        # The delivery's outcome is recorded just after it is sent: wait for its metrics.
        wait_for(lambda: "medic_alert_delivery_seconds_bucket" in scrape()[0], 10, "the delivery's metrics")
        sampled, declared = scrape()
        missing = {name: sorted(where) for name, where in used.items() if name not in declared}
        assert not missing, f"used but exported by no process: {missing}"
        unsampled = {name: sorted(where) for name, where in used.items()
                     if name not in sampled and name not in NOT_SAMPLED_BY_THE_WORKLOAD}
        assert not unsampled, f"exported but without a sample after the workload: {unsampled}"
    finally:
        medic.stop()
