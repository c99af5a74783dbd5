"""The alerting rules for Medic itself (deploy/prometheus) are valid Prometheus rules, pass
their unit tests, link to runbook sections that exist, and read only metrics Medic defines;
the Grafana dashboard (deploy/grafana) likewise. That the metrics are really exported by
running processes is checked by tests/e2e/test_observability_metrics.py."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.promql import metric_names

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "medic-rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "medic-rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "medic.json"
OPERATIONS = REPO / "docs" / "operations.md"


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_rules_pass_their_unit_tests(promtool):
    result = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_at_least_three_rules_have_unit_tests_that_see_them_fire():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert fired <= {rule["alert"] for rule in rules()}
    assert len(fired) >= 3


def test_the_issue_s_six_conditions_each_have_a_rule():
    names = {rule["alert"] for rule in rules()}
    for wanted in ("MedicMonitorNotTicking", "MedicMonitorLagging", "MedicDeliveryBacklogGrowing",
                   "MedicDeliveriesFailing", "MedicHandoffRetrying", "MedicDatabaseUnavailable",
                   "MedicAuthFailuresSpiking"):
        assert wanted in names


def test_every_rule_links_to_its_runbook_section_and_has_a_severity():
    anchors = github_anchors(OPERATIONS.read_text())
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        target = rule["annotations"]["runbook_url"]
        path, _, anchor = target.partition("#")
        assert path == "docs/operations.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, rule["alert"]


def test_rules_and_dashboard_read_only_metrics_medic_defines():
    text = OPERATIONS.read_text()
    documented = set(re.findall(r"^\| `(medic_\w+)` \| (\w+) \|", text, flags=re.MULTILINE))
    known = set()
    for name, kind in documented:
        known |= {name} if kind in ("gauge", "counter") else {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    used = set()
    for expr in [rule["expr"] for rule in rules()] + dashboard_expressions():
        used |= metric_names(expr)
    assert used and used <= known, used - known


def test_the_dashboard_covers_what_a_platform_team_watches():
    used = set()
    for expr in dashboard_expressions():
        used |= metric_names(expr)
    for wanted in ("medic_heartbeats_total", "medic_http_request_duration_seconds_bucket",
                   "medic_services", "medic_alerts_opened_total", "medic_alerts_resolved_total",
                   "medic_alert_delivery_seconds_bucket", "medic_deliveries_total",
                   "medic_delivery_queue_depth", "medic_auth_failures_total", "medic_rate_limited_total",
                   "medic_monitor_tick_seconds_bucket"):
        assert wanted in used, wanted
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("expr", [rule["expr"] for rule in rules()])
def test_promql_names_are_found_in_each_rule(expr):
    assert metric_names(expr), expr
