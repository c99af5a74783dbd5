"""`medic audit --service NAME --since 1h` and the snapshot commands, run
in-process against a real gateway in front of the real stack."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def medic(medic, gateway, stack):
    """``medic`` as the stack's admin, through the test's gateway."""
    return lambda *argv: medic("--url", gateway.url, "--key", stack.admin_key, *argv)


def test_audit_shows_one_services_recent_changes(medic):
    for name in ("billing", "search"):
        assert medic("services", "register", name, "--service-name", "x", "--interval-seconds", "60").code == 0
    assert medic("services", "mute", "billing").code == 0
    assert medic("services", "mute", "search").code == 0

    shown = medic("audit", "--service", "billing", "--since", "1h")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].split()[:4] == ["AT", "WHO", "KEY", "ACTION"]
    action = lines[0].index("ACTION")  # columns are aligned under their headers
    assert [line[action:].split()[0] for line in lines[1:]] == ["mute", "register"]
    assert "muted: False -> True" in lines[1]

    as_json = json.loads(medic("--json", "audit", "--service", "billing", "--since", "1h").out)
    assert as_json["total_count"] == 2 and {e["service_id"] for e in as_json["entries"]} == {
        as_json["entries"][0]["service_id"]}
    assert json.loads(medic("--json", "audit", "--service", "billing", "--since", "2026-01-01T00:00:00Z")
                      .out)["total_count"] == 2


def test_since_must_be_a_duration_or_a_time(medic):
    refused = medic("audit", "--since", "lately")
    assert refused.code == 2 and "--since" in refused.err


def test_snapshots_list_and_restore_undo_a_mute(medic):
    assert medic("services", "register", "billing", "--service-name", "x", "--interval-seconds", "60").code == 0
    assert medic("services", "mute", "billing").code == 0
    listed = json.loads(medic("--json", "snapshots", "list", "--service", "billing").out)
    [snap] = listed["entries"]
    assert snap["action_type"] == "mute"
    restored = medic("snapshots", "restore", str(snap["snapshot_id"]))
    assert restored.code == 0 and "restored from snapshot" in restored.out
    shown = json.loads(medic("--json", "services", "show", "billing").out)
    assert shown["muted"] in (False, 0)
