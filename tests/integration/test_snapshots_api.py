"""Snapshots and undo over HTTP: a snapshot before every destructive change, a
restore that puts the service back exactly (and is itself audited and
snapshotted), a deleted service re-created, and a bulk change of 1,000 services
undone at once."""
from __future__ import annotations

import pytest

from tests.support.http import HttpClient

SETTINGS = ("heartbeat_name", "service_name", "alert_interval_seconds", "threshold", "grace_period_seconds",
            "team", "team_id", "priority", "runbook", "notify_mode", "active", "muted")


@pytest.fixture
def admin(http, stack):
    created = http.post("/v2/api-keys", json={"name": "undo-test", "scopes": ["admin"],
                                             "rate_limits": {"management_per_minute": 100000}})
    client = HttpClient(http.url, created.json()["results"]["key"])
    yield client
    client.session.close()


def _service(db, name: str) -> dict:
    """The service's row (its settings as stored, which snapshot_data mirrors)."""
    return db.one("SELECT * FROM services WHERE heartbeat_name = %s", (name,))


def _settings(service: dict) -> dict:
    return {k: service.get(k) for k in SETTINGS}


def _snapshots(client, **params) -> list[dict]:
    answer = client.get("/v2/snapshots", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]["entries"]


def _legacy_settings(name: str) -> dict:
    return {"heartbeat_name": name, "service_name": name, "alert_interval": 1}


def test_mute_change_interval_deactivate_then_restore_the_first_snapshot(admin, db):
    admin.post("/service", json={**_legacy_settings("billing"), "team": "payments", "priority": "p2"})
    original = _service(db, "billing")
    admin.post("/service/billing", json={"muted": 1}, headers={"X-Actor": "carol"})
    admin.post("/service/billing", json={"alert_interval_seconds": 300})
    admin.post("/service/billing", json={"active": 0})

    snaps = _snapshots(admin, service_id=original["service_id"])
    assert [s["action_type"] for s in snaps] == ["deactivate", "edit", "mute"]  # newest first
    first = snaps[-1]
    assert first["actor"] == "carol" and first["snapshot_data"]["muted"] is False
    assert _settings(first["snapshot_data"]) == _settings(original)

    restored = admin.post(f"/v2/snapshots/{first['snapshot_id']}/restore", headers={"X-Actor": "dan"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["results"]["recreated"] is False
    assert _settings(_service(db, "billing")) == _settings(original)

    again = admin.post(f"/v2/snapshots/{first['snapshot_id']}/restore")
    assert again.status_code == 400 and "already been restored" in again.json()["message"]

    log = admin.get("/v2/audit-logs", params={"service_id": original["service_id"]}).json()["results"]["entries"]
    assert (log[0]["action_type"], log[0]["actor"]) == ("restore", "dan")
    assert log[0]["before"]["active"] is False and log[0]["after"]["active"] is True

    # The restore was snapshotted too: undoing it brings back the deactivated service.
    [undo] = [s for s in _snapshots(admin, service_id=original["service_id"]) if s["action_type"] == "restore"]
    assert admin.post(f"/v2/snapshots/{undo['snapshot_id']}/restore").status_code == 200
    assert _service(db, "billing")["active"] is False
    assert _service(db, "billing")["alert_interval_seconds"] == 300


OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00", "timezone": "Europe/Berlin"}
NIGHTS = {"days": ["sat", "sun"], "from": "22:00", "to": "06:00", "timezone": "UTC"}
TARGET_SETTINGS = ("type", "config", "priority", "enabled", "active_hours")


def _targets(client, service_id: int) -> list[dict]:
    answer = client.get("/v2/notification-targets", params={"service_id": service_id})
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def _target_settings(targets: list[dict]) -> list[dict]:
    return sorted(({k: t.get(k) for k in TARGET_SETTINGS} for t in targets), key=lambda t: t["priority"])


def test_restoring_the_first_snapshot_puts_back_the_service_and_its_targets_with_their_working_hours(admin, db):
    admin.post("/service", json={**_legacy_settings("billing"), "team": "payments"})
    original = _service(db, "billing")
    sid = original["service_id"]
    pager = admin.post("/v2/notification-targets", json={
        "service_id": sid, "type": "pagerduty", "config": {"routing_key": "RK-secret-123"}, "priority": 1,
        "active_hours": OFFICE}).json()["results"]
    slack = admin.post("/v2/notification-targets", json={
        "service_id": sid, "type": "slack", "config": {"channel_id": "C-ops"}, "priority": 2}).json()["results"]
    targets_before = _targets(admin, sid)

    assert admin.post(f"/v2/services/{sid}/mute", json={"reason": "deploy"}).status_code == 200
    admin.post("/service/billing", json={"alert_interval_seconds": 300})
    admin.post("/service/billing", json={"active": 0})
    changed = admin.patch(f"/v2/notification-targets/{pager['target_id']}",
                          json={"priority": 5, "enabled": False, "active_hours": NIGHTS,
                                "config": {"routing_key": "RK-other-456"}})
    assert changed.status_code == 200, changed.text
    assert admin.delete(f"/v2/notification-targets/{slack['target_id']}").status_code == 200
    admin.post("/v2/notification-targets", json={"service_id": sid, "type": "slack",
                                                "config": {"channel_id": "C-added-later"}, "priority": 3})

    [first] = _snapshots(admin, service_id=sid, action_type="mute")
    restored = admin.post(f"/v2/snapshots/{first['snapshot_id']}/restore", headers={"X-Actor": "erin"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["results"]["recreated"] is False

    assert _settings(_service(db, "billing")) == _settings(original)
    targets_after = _targets(admin, sid)
    assert _target_settings(targets_after) == _target_settings(targets_before)
    # The one that still existed keeps its id; the one deleted since is back under a new one.
    assert {t["target_id"] for t in targets_after} >= {pager["target_id"]}
    assert len(targets_after) == 2

    log = admin.get("/v2/audit-logs", params={"service_id": sid, "resource": "service"}).json()["results"]["entries"]
    assert (log[0]["action_type"], log[0]["actor"]) == ("restore", "erin")
    assert log[0]["details"]["snapshot_id"] == first["snapshot_id"]
    # Routing recorded the target changes as the same caller.
    target_log = admin.get("/v2/audit-logs", params={"resource": "notification_target", "actor": "erin"})
    assert target_log.status_code == 200, target_log.text
    assert sorted(e["action_type"] for e in target_log.json()["results"]["entries"]) == ["create", "delete", "update"]


def test_restoring_a_deleted_service_recreates_it_with_its_name_a_new_id_and_its_targets(admin, db):
    admin.post("/service", json=_legacy_settings("billing"))
    old = _service(db, "billing")
    admin.post("/v2/notification-targets", json={"service_id": old["service_id"], "type": "pagerduty",
                                                "config": {"routing_key": "RK-secret-123"}, "priority": 1,
                                                "active_hours": OFFICE})
    assert admin.delete(f"/v2/services/{old['service_id']}").status_code == 200
    [snap] = _snapshots(admin, service_id=old["service_id"], action_type="delete")
    [target] = snap["snapshot_data"]["targets"]
    assert target["type"] == "pagerduty" and "routing_key" not in target["config"]  # never shown

    restored = admin.post(f"/v2/snapshots/{snap['snapshot_id']}/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    new_id = body["results"]["service"]["service_id"]
    assert body["results"]["recreated"] is True and new_id != old["service_id"]
    assert f"re-created with id {new_id} (it was {old['service_id']})" in body["message"]
    assert _settings(_service(db, "billing")) == _settings(old)
    [recreated] = admin.get("/v2/notification-targets", params={"service_id": new_id}).json()["results"]
    assert recreated["config"] == {"routing_key": "RK-secret-123"} and recreated["priority"] == 1
    assert recreated["active_hours"] == OFFICE


def test_snapshot_routes_answer_404_for_an_unknown_snapshot(admin):
    assert admin.get("/v2/snapshots/999999").status_code == 404
    assert admin.post("/v2/snapshots/999999/restore").status_code == 404


def test_a_bulk_change_of_1000_services_snapshots_each_under_one_bulk_id_and_undoes_at_once(admin, db):
    db.execute("""INSERT INTO services (heartbeat_name, service_name, alert_interval_seconds, deadline_at)
                  SELECT 'bulk-' || n, 'bulk', 60, now() + interval '1 hour' FROM generate_series(1, 1000) n""")
    ids = [r["service_id"] for r in db.all("SELECT service_id FROM services ORDER BY service_id")]
    changed = admin.post("/v2/services/bulk", json={"service_ids": ids, "muted": True, "priority": "p1"})
    assert changed.status_code == 200, changed.text
    bulk_id = changed.json()["results"]["bulk_id"]
    assert changed.json()["results"]["changed"] == 1000

    page = admin.get("/v2/snapshots", params={"bulk_id": bulk_id}).json()["results"]
    assert page["total_count"] == 1000
    assert {s["action_type"] for s in page["entries"]} == {"bulk_edit"}
    assert db.one("SELECT count(*) AS n FROM services WHERE muted AND priority = 'p1'")["n"] == 1000
    events = admin.get("/v2/audit-logs", params={"action_type": "bulk_edit"}).json()["results"]
    assert events["total_count"] == 1000 and {e["bulk_id"] for e in events["entries"]} == {bulk_id}

    undone = admin.post(f"/v2/bulk-changes/{bulk_id}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["results"]["restored"] == 1000
    assert db.one("SELECT count(*) AS n FROM services WHERE NOT muted AND priority = 'p3'")["n"] == 1000
    again = admin.post(f"/v2/bulk-changes/{bulk_id}/undo")
    assert again.status_code == 400 and "already been restored" in again.json()["message"]
