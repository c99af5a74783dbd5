"""The remediation rules that need no database: the playbook document, the
trigger rule, variable substitution and redaction, the breaker's threshold and
Slack's request signature."""
from __future__ import annotations

import pytest

from gateway.remediation import slack_request_valid, slack_signature
from services.remediation import playbook, slack, triggers
from services.remediation.breaker import is_open
from services.remediation.variables import redact, secret_names, substitute

ORIGINAL_EXAMPLE = """
name: restart-service
description: Restart a failed service
approval: required
steps:
  - name: call-restart-api
    type: webhook
    url: https://api.example.com/restart
    method: POST
    body:
      service: ${SERVICE_NAME}
  - name: wait-for-restart
    type: wait
    duration: 30s
  - name: verify-heartbeat
    type: condition
    check: heartbeat_received
    timeout: 5m
    on_failure: escalate
"""


def test_the_original_s_example_parses_with_its_defaults():
    parsed = playbook.parse(ORIGINAL_EXAMPLE)
    assert (parsed.name, parsed.approval, parsed.version, parsed.service_pattern) == (
        "restart-service", "required", 1, None)
    webhook, wait, condition = parsed.steps
    assert webhook["success_codes"] == [200, 201, 202] and webhook["timeout_seconds"] == 30
    assert webhook["body"] == {"service": "${SERVICE_NAME}"}
    assert wait["duration_seconds"] == 30
    assert (condition["timeout_seconds"], condition["on_failure"]) == (300, "escalate")


@pytest.mark.parametrize("value, expected", [("none", ("none", None)), ("required", ("required", None)),
                                             ("timeout:5m", ("timeout", 5)), ("TIMEOUT:1m", ("timeout", 1))])
def test_approval_modes(value, expected):
    assert playbook.parse_approval(value) == expected


@pytest.mark.parametrize("value", ["sometimes", "timeout:0m", "timeout:5", "timeout:5s", "", 3])
def test_bad_approval_modes_are_refused(value):
    with pytest.raises(ValueError):
        playbook.parse_approval(value)


@pytest.mark.parametrize("value, seconds", [(30, 30), ("30", 30), ("30s", 30), ("5m", 300), ("1h", 3600)])
def test_durations(value, seconds):
    assert playbook.parse_duration(value) == seconds


def test_every_problem_is_reported_with_its_line_and_field():
    document = ("name: x\n"              # 1
                "approval: sometimes\n"  # 2
                "trigger:\n"             # 3
                "  service_pattern: 'w-*'\n"
                "  consecutive_failures: 0\n"  # 5
                "steps:\n"               # 6
                "  - name: a\n"          # 7
                "    type: webhook\n"
                "    url: ftp://x\n"      # 9
                "    success_codes: [700]\n"  # 10
                "  - name: a\n"          # 11
                "    type: wait\n"
                "    duration: 5x\n"      # 13
                "    colour: blue\n")    # 14
    problems = {(p.line, p.field) for p in playbook.validate(document)}
    assert problems == {(2, "approval"), (5, "trigger.consecutive_failures"), (9, "steps[0].url"),
                        (10, "steps[0].success_codes"), (11, "steps[1].name"), (13, "steps[1].duration"),
                        (14, "steps[1].colour")}


def test_yaml_syntax_errors_and_empty_documents_are_refused_with_a_line():
    (problem,) = playbook.validate("name: x\nsteps: [\n")
    assert problem.line >= 2 and "invalid YAML" in problem.message
    (empty,) = playbook.validate("   \n")
    assert empty.message == "the playbook document is empty"
    (listed,) = playbook.validate("- just\n- a list\n")
    assert "YAML mapping" in listed.message


def test_yaml_tags_that_build_objects_are_refused():
    (problem,) = playbook.validate("name: !!python/object/apply:os.system ['true']\nsteps: []\n")
    assert "invalid YAML" in problem.message


def test_a_script_name_is_a_file_name_not_a_path():
    for name in ("../../bin/sh", "/bin/sh", "a/b", "-rf"):
        problems = playbook.validate(f"name: s\nsteps:\n  - name: s\n    type: script\n    script: '{name}'\n")
        assert [p.field for p in problems] == ["steps[0].script"], name


def test_the_most_specific_matching_playbook_starts_once_per_alert():
    rules = [triggers.TriggerRule(1, "worker-*", 1), triggers.TriggerRule(2, "worker-*", 3),
             triggers.TriggerRule(3, "api-*", 1)]
    names = ("worker-eu-1", "Worker EU 1")
    assert triggers.choose(rules, names, 1, set()) == 1
    assert triggers.choose(rules, names, 2, {1}) is None        # 1 ran; 2 needs 3 failures
    assert triggers.choose(rules, names, 3, {1}) == 2           # the more specific one takes over
    assert triggers.choose(rules, names, 4, {1, 2}) is None
    assert triggers.choose(rules, ("API-GW",), 1, set()) == 3   # case-insensitive glob
    assert triggers.choose(rules, ("db-1",), 9, set()) is None


def test_substitution_is_textual_once_and_leaves_unknown_names():
    variables = {"SERVICE_NAME": "web ${secrets.TOKEN}", "ALERT_ID": 42}
    value = {"url": "https://x/${SERVICE_NAME}/${ALERT_ID}", "h": ["${MISSING}"]}
    assert substitute(value, variables) == {"url": "https://x/web ${secrets.TOKEN}/42", "h": ["${MISSING}"]}
    # A secret named only inside a variable's value (an alert field) is not expanded.
    assert substitute("${SERVICE_NAME}", variables, {"TOKEN": "s3"}.get) == "web ${secrets.TOKEN}"
    assert secret_names("${SERVICE_NAME}") == set()
    assert secret_names({"a": "${secrets.A}", "b": ["${secrets.B} ${secrets.A}"]}) == {"A", "B"}
    assert substitute("Bearer ${secrets.A}", {}, {"A": "s3"}.get) == "Bearer s3"
    assert redact("got s3cret and s3cret-longer", ["s3cret", "s3cret-longer"]) == "got *** and ***"


def test_the_breaker_opens_at_its_limit():
    assert [is_open(n, 5) for n in (0, 4, 5, 6)] == [False, False, True, True]


def test_slack_signatures_are_checked_with_their_five_minute_window():
    body = b"payload=%7B%7D"
    signature = slack_signature("secret", "1700000000", body)
    assert signature.startswith("v0=")
    assert slack_request_valid("secret", "1700000000", body, signature, now=1700000000 + 299)
    assert not slack_request_valid("secret", "1700000000", body, signature, now=1700000000 + 301)
    assert not slack_request_valid("secret", "1700000000", body, signature, now=1700000000 - 301)
    assert not slack_request_valid("other", "1700000000", body, signature, now=1700000000)
    assert not slack_request_valid("secret", "1700000000", body + b"x", signature, now=1700000000)
    assert not slack_request_valid("secret", "soon", body, signature, now=1700000000)


def test_a_decided_approval_request_names_who_decided_and_has_no_buttons():
    execution = {"execution_id": 7, "playbook_name": "restart", "variables": {"SERVICE_NAME": "web"}}
    by_slack = slack.decided_blocks(execution, "approved", "slack:U0APPROVER")
    assert not [b for b in by_slack if b["type"] == "actions"]
    assert by_slack[-1]["elements"][0]["text"] == "Approved by <@U0APPROVER>"
    by_key = slack.decided_blocks(execution, "rejected", "<!channel> alice")
    assert by_key[-1]["elements"][0]["text"] == "Rejected by &lt;!channel&gt; alice"  # no mention smuggled in
    by_clock = slack.decided_blocks(execution, "approved", "timeout")
    assert "automatically" in by_clock[-1]["elements"][0]["text"]
