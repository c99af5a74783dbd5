"""The audit log over HTTP: the legacy API's changes are audited, and the
caller's X-Actor header reaches the event."""
from __future__ import annotations

import pytest


def _events(db, resource: str = "service") -> list[dict]:
    return db.all("SELECT * FROM audit_events WHERE resource = %s ORDER BY event_id", (resource,))


def test_a_legacy_service_update_is_audited_with_the_x_actor(http, db):
    http.post("/service", json={"heartbeat_name": "billing", "service_name": "billing", "alert_interval": 1})
    changed = http.post("/service/billing", json={"muted": 1}, headers={"X-Actor": "carol"})
    assert changed.status_code == 200, changed.text

    register, mute = _events(db)
    assert register["action_type"] == "register" and register["actor"] is None
    assert (mute["action_type"], mute["actor"]) == ("mute", "carol")
    assert mute["before"]["muted"] is False and mute["after"]["muted"] is True
    assert mute["request_id"] == changed.headers["X-Request-Id"]


@pytest.mark.parametrize("header", ["x" * 256, "da\x85ve"])
def test_an_unusable_x_actor_is_ignored_not_refused(http, db, header):
    created = http.post("/v2/teams", json={"name": "ops"}, headers={"X-Actor": header})
    assert created.status_code == 201, created.text
    [event] = _events(db, "team")
    assert event["actor"] is None and event["key_name"]
