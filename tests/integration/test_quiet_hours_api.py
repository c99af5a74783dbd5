"""Maintenance windows, mutes and acknowledgements through the gateway and the
CLI, against the real stack (auth enforced)."""
from __future__ import annotations

import datetime as dt

from tests.integration.test_cli import admin, ok  # noqa: F401 (fixtures; medic is in conftest.py)


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


NOW = dt.datetime.now(dt.timezone.utc)


def service_id(http, name="web", team="payments") -> int:
    body = {"heartbeat_name": name, "service_name": name, "alert_interval": 1, "team": team}
    return http.post("/service", json=body).json()["results"][0]["service_id"]


def test_maintenance_window_crud_over_http(http):
    sid = service_id(http)
    created = http.post("/v2/maintenance-windows", json={
        "scope": "service", "service_id": sid, "reason": "kernel upgrade",
        "starts_at": iso(NOW - dt.timedelta(minutes=5)), "ends_at": iso(NOW + dt.timedelta(hours=1))})
    assert created.status_code == 201, created.text
    window = created.json()["results"]
    assert (window["scope"], window["service_id"], window["reason"], window["open_now"]) == (
        "service", sid, "kernel upgrade", True)
    assert "key:" in window["created_by"]  # the creator: the calling key
    recurring = http.post("/v2/maintenance-windows", json={
        "scope": "team", "team": "payments", "reason": "weekly restart", "cron": "0 3 * * sun",
        "duration_seconds": 1800, "timezone": "Europe/Berlin"}).json()["results"]
    assert recurring["cron"] == "0 3 * * sun" and recurring["next_start"] or recurring["open_now"]

    listed = http.get("/v2/maintenance-windows").json()["results"]
    assert [w["window_id"] for w in listed] == [window["window_id"], recurring["window_id"]]
    active = http.get("/v2/maintenance-windows?active_only=true").json()["results"]
    assert window["window_id"] in [w["window_id"] for w in active]

    changed = http.request("PUT", f"/v2/maintenance-windows/{window['window_id']}", json={
        "scope": "glob", "name_glob": "web*", "reason": "kernel upgrade, all web",
        "starts_at": iso(NOW + dt.timedelta(hours=1)), "ends_at": iso(NOW + dt.timedelta(hours=2))})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["results"]["scope"], changed.json()["results"]["open_now"]) == ("glob", False)
    assert http.get(f"/v2/maintenance-windows/{window['window_id']}").json()["results"]["name_glob"] == "web*"

    assert http.delete(f"/v2/maintenance-windows/{window['window_id']}").status_code == 200
    assert http.get(f"/v2/maintenance-windows/{window['window_id']}").status_code == 404
    assert http.delete(f"/v2/maintenance-windows/{window['window_id']}").status_code == 404


def test_bad_maintenance_windows_are_refused_naming_the_field(http):
    start, end = iso(NOW), iso(NOW + dt.timedelta(hours=1))
    cases = [
        ({"scope": "service", "reason": "x", "starts_at": start, "ends_at": end}, "service_id"),
        ({"scope": "planet", "reason": "x", "starts_at": start, "ends_at": end}, "scope"),
        ({"scope": "all", "reason": "x", "starts_at": end, "ends_at": start}, "ends_at"),
        ({"scope": "all", "reason": "x", "cron": "61 * * * *", "duration_seconds": 600, "timezone": "UTC"},
         "cron"),
        ({"scope": "all", "reason": "x", "cron": "0 1 * * *", "duration_seconds": 600, "timezone": "Nowhere/X"},
         "timezone"),
        ({"scope": "all", "starts_at": start, "ends_at": end}, "reason"),
        ({"scope": "all", "reason": "x", "starts_at": "yesterday", "ends_at": end}, "starts_at"),
    ]
    for body, field in cases:
        answer = http.post("/v2/maintenance-windows", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert field in answer.json()["message"], (field, answer.json()["message"])
    unknown = http.post("/v2/maintenance-windows", json={
        "scope": "service", "service_id": 987654, "reason": "x", "starts_at": start, "ends_at": end})
    assert unknown.status_code == 404
    assert http.get("/v2/maintenance-windows").json()["results"] == []


def test_medic_windows_create_list_active_and_delete(admin, http):
    service_id(http, "db-primary")
    made = ok(admin("--json", "windows", "create", "--glob", "db-*", "--reason", "failover drill",
                    "--starts-at", iso(NOW - dt.timedelta(minutes=1)),
                    "--ends-at", iso(NOW + dt.timedelta(hours=1)))).json()
    later = ok(admin("--json", "windows", "create", "--service", "db-primary", "--reason", "nightly",
                     "--cron", "0 2 * * *", "--duration", "2h", "--timezone", "America/New_York")).json()
    assert later["duration_seconds"] == 7200 and later["scope"] == "service"
    listed = ok(admin("windows", "list")).out
    assert "failover drill" in listed and "nightly" in listed
    active = ok(admin("--json", "windows", "list", "--active")).json()
    open_ids = {w["window_id"] for w in active}
    assert made["window_id"] in open_ids
    assert all(w["open_now"] for w in active)
    refused = admin("windows", "create", "--all", "--reason", "x", "--cron", "0 2 * * *", "--duration", "1h",
                    "--timezone", "Mars/Base")
    assert refused.code != 0 and "timezone" in refused.err
    moved = ok(admin("--json", "windows", "update", str(later["window_id"]), "--team", "dba", "--reason", "weekly",
                     "--cron", "0 3 * * sun", "--duration", "45m", "--timezone", "Europe/Berlin")).json()
    assert (moved["scope"], moved["team"], moved["duration_seconds"], moved["reason"]) == ("team", "dba", 2700, "weekly")
    ok(admin("windows", "delete", str(made["window_id"])))
    assert made["window_id"] not in {w["window_id"] for w in ok(admin("--json", "windows", "list")).json()}


def test_mute_with_reason_and_until_and_the_legacy_flag(admin, http):
    sid = service_id(http, "cache")
    until = NOW + dt.timedelta(hours=2)
    muted = http.post(f"/v2/services/{sid}/mute", json={"reason": "noisy during migration", "until": iso(until)})
    assert muted.status_code == 200, muted.text
    service = muted.json()["results"]
    assert (service["muted"], service["mute_reason"]) == (True, "noisy during migration")
    assert service["muted_until"].startswith(iso(until)[:19]) and service["muted_by"]
    past = http.post(f"/v2/services/{sid}/mute", json={"until": iso(NOW - dt.timedelta(hours=1))})
    assert past.status_code == 400 and "until" in past.json()["message"]
    unmuted = http.delete(f"/v2/services/{sid}/mute").json()["results"]
    assert (unmuted["muted"], unmuted.get("mute_reason", ""), unmuted.get("muted_until")) == (False, "", None)
    # The legacy field still mutes and unmutes.
    assert http.post("/service/cache", json={"muted": 1}).status_code == 200
    assert http.get("/service/cache").json()["results"][0]["muted"] == 1
    shown = ok(admin("--json", "services", "mute", "cache", "--reason", "deploy")).json()
    assert (shown["muted"], shown["mute_reason"]) == (True, "deploy")
    assert ok(admin("--json", "services", "unmute", "cache")).json()["muted"] is False


def test_acknowledging_needs_an_open_alert(http):
    assert http.post("/v2/alerts/424242/ack").status_code == 404


def test_targets_with_working_hours_from_the_cli_and_http(admin, http):
    sid = service_id(http, "office")
    made = ok(admin("--json", "targets", "create", "--service-id", str(sid), "--channel-id", "COPS",
                    "--days", "mon,tue,wed,thu,fri", "--from", "09:00", "--to", "17:00",
                    "--timezone", "Europe/Berlin")).json()
    assert made["active_hours"] == {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00",
                                    "timezone": "Europe/Berlin"}
    assert "mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin" in ok(admin("targets", "list")).out
    half = admin("targets", "create", "--service-id", str(sid), "--channel-id", "C2", "--days", "sat")
    assert half.code != 0 and "together" in half.err
    refused = http.post("/v2/notification-targets", json={
        "service_id": sid, "type": "slack", "config": {"channel_id": "C3"},
        "active_hours": {"days": ["mon"], "from": "25:00", "to": "17:00", "timezone": "UTC"}})
    assert refused.status_code == 400 and "active_hours.from" in refused.json()["message"]
    cleared = ok(admin("--json", "targets", "update", str(made["target_id"]), "--always")).json()
    assert "active_hours" not in cleared or not cleared["active_hours"]


def test_announce_is_set_on_create_and_update_over_http_and_the_cli(admin, http):
    sid = service_id(http, "search")
    made = http.post("/v2/maintenance-windows", json={
        "scope": "service", "service_id": sid, "reason": "reindex", "announce": True,
        "starts_at": iso(NOW + dt.timedelta(hours=1)), "ends_at": iso(NOW + dt.timedelta(hours=2))})
    assert made.status_code == 201, made.text
    window = made.json()["results"]
    assert window["announce"] is True
    assert http.get(f"/v2/maintenance-windows/{window['window_id']}").json()["results"]["announce"] is True
    changed = http.request("PUT", f"/v2/maintenance-windows/{window['window_id']}", json={
        "scope": "service", "service_id": sid, "reason": "reindex",
        "starts_at": iso(NOW + dt.timedelta(hours=1)), "ends_at": iso(NOW + dt.timedelta(hours=2))}).json()
    assert not changed["results"].get("announce")  # a replace: left out is false
    by_cli = ok(admin("--json", "windows", "create", "--service", "search", "--reason", "reindex again",
                      "--starts-at", iso(NOW + dt.timedelta(hours=3)), "--ends-at", iso(NOW + dt.timedelta(hours=4)),
                      "--announce")).json()
    assert by_cli["announce"] is True
    silent = ok(admin("--json", "windows", "update", str(by_cli["window_id"]), "--service", "search",
                      "--reason", "reindex again", "--starts-at", iso(NOW + dt.timedelta(hours=3)),
                      "--ends-at", iso(NOW + dt.timedelta(hours=4)))).json()
    assert not silent.get("announce")


def announcements(db) -> list[tuple[str, str, int]]:
    """The announcements written to the hand-off outbox: (heartbeat name, kind, window)."""
    return [(r["heartbeat_name"], r["kind"], r["window_id"]) for r in db.all(
        "SELECT s.heartbeat_name, n.kind, n.window_id FROM alert_notifications n"
        " JOIN services s ON s.service_id = n.service_id WHERE n.alert_id IS NULL ORDER BY n.notification_id")]


def test_two_announcers_claim_each_start_once_and_deleting_an_open_window_announces_its_end(http, db):
    import threading

    from services.heartbeat.announcements import Announcer
    from services.heartbeat.window_store import WindowStore

    for name in ("db-1", "db-2", "db-3", "web-1"):
        service_id(http, name)
    http.post("/service/db-3", json={"active": False})  # inactive: not told
    open_now = {"starts_at": iso(NOW - dt.timedelta(minutes=1)), "ends_at": iso(NOW + dt.timedelta(hours=1))}
    told = http.post("/v2/maintenance-windows", json={
        "scope": "glob", "name_glob": "DB-*", "reason": "failover", "announce": True, **open_now}).json()["results"]
    http.post("/v2/maintenance-windows", json={"scope": "all", "reason": "silent", **open_now})
    replicas = [Announcer(db, WindowStore(db)) for _ in range(2)]
    for _ in range(3):  # the two monitors' passes, at the same time
        passes = [threading.Thread(target=r.tick) for r in replicas]
        for thread in passes:
            thread.start()
        for thread in passes:
            thread.join()
    assert sorted(announcements(db)) == [("db-1", "window_started", told["window_id"]),
                                         ("db-2", "window_started", told["window_id"])]

    assert http.delete(f"/v2/maintenance-windows/{told['window_id']}").status_code == 200
    for replica in replicas:
        replica.tick()
    assert sorted(announcements(db)) == sorted([
        ("db-1", "window_started", told["window_id"]), ("db-2", "window_started", told["window_id"]),
        ("db-1", "window_ended", told["window_id"]), ("db-2", "window_ended", told["window_id"])])
