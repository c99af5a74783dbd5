"""The `medic` management commands, run in-process against a real gateway in
front of the real stack (auth enforced), as a person or a script would."""
from __future__ import annotations

import json
import time

import pytest

from tests.support.cli import Run
from tests.support.ports import free_port


@pytest.fixture
def admin(medic, gateway, stack):
    """medic(...) as an admin whose key allows many management calls a minute (the
    bootstrap key's 300 would do, but this one is the test's own)."""
    created = medic("--url", gateway.url, "--key", stack.admin_key, "--json", "keys", "create",
                    "--name", "cli-test-admin", "--scope", "admin", "--management-per-minute", "10000")
    assert created.code == 0, created.err
    key = created.json()["key"]

    def run(*argv: str) -> Run:
        return medic("--url", gateway.url, "--key", key, *argv)
    run.key = key
    return run


def ok(run: Run) -> Run:
    assert run.code == 0, f"exit {run.code}: {run.err}"
    return run


def test_service_lifecycle_register_list_show_update_mute_deactivate(admin):
    registered = ok(admin("services", "register", "nightly-backup", "--service-name", "backups",
                          "--interval-minutes", "5", "--priority", "p2", "--notify-mode", "until_success"))
    assert "Heartbeat successfully registered." in registered.out
    assert "nightly-backup" in registered.out and "5m" in registered.out

    listed = ok(admin("services", "list", "--service-name", "backups"))
    header, row = listed.out.splitlines()[:2]
    assert header.split()[:4] == ["ID", "NAME", "SERVICE", "STATE"] and "nightly-backup" in row
    as_json = ok(admin("--json", "services", "list")).json()
    assert [s["heartbeat_name"] for s in as_json] == ["nightly-backup"]
    service_id = as_json[0]["service_id"]

    updated = ok(admin("services", "update", "nightly-backup", "--threshold", "3", "--interval-seconds", "90"))
    assert "Successfully posted update" in updated.out and "90s" in updated.out
    muted = ok(admin("services", "mute", "nightly-backup", "--json")).json()
    assert muted["muted"] is True and muted["muted_by"]  # the /v2 service: who muted it
    ok(admin("services", "deactivate", "nightly-backup"))
    assert ok(admin("services", "list", "--active")).out.strip() == "(none)"
    assert "nightly-backup" in ok(admin("services", "list", "--inactive")).out

    shown = ok(admin("services", "show", "nightly-backup"))
    assert "threshold" in shown.out and "recent transitions" in shown.out and "muted" in shown.out
    shown_json = ok(admin("services", "show", "nightly-backup", "--json")).json()
    assert shown_json["threshold"] == 3
    assert [t["reason"] for t in shown_json["transitions"]][:2] == ["deactivated", "muted"]

    ok(admin("services", "activate", "nightly-backup"))
    ok(admin("services", "unmute", "nightly-backup"))
    assert "deleted" in ok(admin("services", "delete", str(service_id))).out.lower()
    assert ok(admin("--json", "services", "list")).json() == []


def test_services_delete_takes_a_heartbeat_name_or_an_id(admin):
    ok(admin("services", "register", "夜間-backup", "--service-name", "b", "--interval-minutes", "5"))
    ok(admin("services", "register", "etl", "--service-name", "b", "--interval-minutes", "5"))
    etl_id = ok(admin("--json", "services", "show", "etl")).json()["service_id"]
    assert "deleted" in ok(admin("services", "delete", "夜間-backup")).out.lower()
    assert "deleted" in ok(admin("services", "delete", str(etl_id))).out.lower()
    assert ok(admin("--json", "services", "list")).json() == []
    missing = admin("services", "delete", "no-such-heartbeat")
    assert missing.code == 1 and "no service is registered as 'no-such-heartbeat'" in missing.err
    gone = admin("services", "delete", str(etl_id))  # an id that names nothing any more
    assert gone.code == 1 and "HTTP 404" in gone.err


def test_help_shows_the_gateway_url_that_will_be_used(medic, monkeypatch):
    monkeypatch.setenv("MEDIC_GATEWAY_PORT", "18181")
    assert "http://127.0.0.1:18181" in medic("--help").out
    assert "http://127.0.0.1:18181" in medic("services", "list", "--help").out
    monkeypatch.setenv("MEDIC_URL", "https://medic.example.com")
    assert "https://medic.example.com" in medic("--help").out


def test_heartbeat_is_sent_and_listed_and_alerts_are_listed(admin):
    ok(admin("services", "register", "etl", "--service-name", "data", "--interval-seconds", "30"))
    sent = ok(admin("heartbeat", "send", "etl"))
    assert "Heartbeat Posted Successfully." in sent.out
    ok(admin("heartbeat", "send", "etl", "--status", "running"))

    listed = ok(admin("heartbeat", "list", "--name", "etl"))
    assert listed.out.splitlines()[0].split()[:3] == ["ID", "NAME", "SERVICE"]
    beats = ok(admin("--json", "heartbeat", "list", "--service-name", "data", "--max-count", "1")).json()
    assert [(b["heartbeat_name"], b["status"]) for b in beats] == [("etl", "RUNNING")]

    assert isinstance(ok(admin("alerts", "--active", "--json")).json(), list)
    assert ok(admin("alerts", "--closed")).code == 0


def test_inactive_service_heartbeat_fails_with_the_servers_message(admin):
    ok(admin("services", "register", "cron", "--service-name", "jobs", "--interval-minutes", "1"))
    ok(admin("services", "deactivate", "cron"))
    refused = admin("heartbeat", "send", "cron")
    assert refused.code == 1 and "marked inactive" in refused.err and "HTTP 400" in refused.err


def test_keys_create_list_set_limits_and_revoke(admin, gateway):
    created = ok(admin("keys", "create", "--name", "dashboard", "--scope", "read",
                       "--expires-at", "2099-01-01T00:00:00Z"))
    plaintext = next(line.strip() for line in created.out.splitlines() if line.strip().startswith("mdk_"))
    assert "shown only this once" in created.out

    listed = ok(admin("keys", "list"))
    assert "dashboard" in listed.out and plaintext not in listed.out and admin.key not in listed.out
    keys = ok(admin("keys", "list", "--json")).json()
    key_id = next(k["key_id"] for k in keys if k["name"] == "dashboard")
    assert all("key" not in k and "hash" not in json.dumps(k) for k in keys)

    limited = ok(admin("--json", "keys", "set-limits", key_id, "--management-per-minute", "500")).json()
    assert limited["rate_limits"]["management_per_minute"] == 500

    as_reader = ["--url", gateway.url, "--key", plaintext]
    ok(admin(*as_reader, "services", "list"))
    forbidden = admin(*as_reader, "teams", "create", "--name", "nope")
    assert forbidden.code == 1 and "HTTP 403" in forbidden.err

    ok(admin("keys", "revoke", key_id))
    deadline = time.monotonic() + 10  # each process trusts a verified key for auth_cache_ttl (1 s here)
    while (refused := admin(*as_reader, "services", "list")).code == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert refused.code == 1 and "HTTP 401" in refused.err and "revoked" in refused.err.lower()
    assert plaintext not in refused.err


def test_teams_targets_webhooks_and_deliveries(admin):
    team = ok(admin("--json", "teams", "create", "--name", "platform", "--slack-channel-id", "C123")).json()
    assert "platform" in ok(admin("teams", "list")).out
    renamed = ok(admin("teams", "update", str(team["team_id"]), "--name", "infra"))
    assert "Team updated." in renamed.out and "infra" in renamed.out

    service = ok(admin("--json", "services", "register", "api", "--service-name", "web",
                       "--interval-minutes", "1", "--team-id", str(team["team_id"]))).json()[0]
    sid = str(service["service_id"])
    slack = ok(admin("--json", "targets", "create", "--service-id", sid, "--channel-id", "C999")).json()
    assert slack["type"] == "slack" and slack["enabled"] is True
    ok(admin("targets", "create", "--service-id", sid, "--routing-key", "pd-routing-key-1234567890",
             "--priority", "1"))
    listed = ok(admin("targets", "list", "--service-id", sid))
    assert "pagerduty" in listed.out and "C999" in listed.out
    assert "pd-routing-key" not in listed.out  # a routing key is a secret
    assert "pd-routing-key" not in ok(admin("--json", "targets", "list")).out
    disabled = ok(admin("--json", "targets", "update", str(slack["target_id"]), "--disabled")).json()
    assert disabled["enabled"] is False
    assert "deleted" in ok(admin("targets", "delete", str(slack["target_id"]))).out

    created = ok(admin("webhooks", "create", "--url", "https://hooks.example.com/medic", "--service-id", sid,
                       "--header", "Authorization=Bearer hook-token"))
    assert "Signing secret (shown only this once" in created.out
    webhooks = ok(admin("--json", "webhooks", "list")).json()
    assert webhooks[0]["has_secret"] is True and webhooks[0]["headers"] == {"Authorization": "***"}
    listed = ok(admin("webhooks", "list"))
    assert "hook-token" not in listed.out and "hooks.example.com" in listed.out
    made_global = ok(admin("--json", "webhooks", "update", str(webhooks[0]["webhook_id"]), "--global")).json()
    unsigned = ok(admin("--json", "webhooks", "update", str(webhooks[0]["webhook_id"]), "--no-secret")).json()
    assert unsigned["has_secret"] is False
    assert made_global["service_id"] is None
    ok(admin("webhooks", "delete", str(webhooks[0]["webhook_id"])))
    assert ok(admin("--json", "webhooks", "list")).json() == []

    assert ok(admin("--json", "deliveries", "list", "--service-id", sid, "--limit", "5")).json() == []
    assert ok(admin("deliveries", "list", "--status", "failed")).out.strip() == "(none)"
    missing = admin("deliveries", "retry", "987654")
    assert missing.code == 1 and "HTTP 404" in missing.err

    assert "Team deleted." in ok(admin("teams", "delete", str(team["team_id"]))).out


def test_a_failed_delivery_retried_with_the_cli_goes_out_again_and_succeeds(admin, stack, db):
    from tests.support.receivers import Reply, WebhookReceiver
    from tests.support.delivery import failed_delivery_in_stack, wait_until_final

    with WebhookReceiver() as hook:
        hook.script(Reply(410))  # fails for good; the receiver answers 200 from then on
        delivery_id = failed_delivery_in_stack(stack, db, hook.url + "/hook")
        failed = ok(admin("--json", "deliveries", "list", "--status", "failed")).json()
        retried = ok(admin("deliveries", "retry", str(delivery_id)))
        row = wait_until_final(db, [delivery_id])[delivery_id]
        succeeded = ok(admin("--json", "deliveries", "list", "--status", "success")).json()
        copies = hook.requests

    assert [d["delivery_id"] for d in failed] == [delivery_id]
    assert "Delivery queued again." in retried.out and "pending" in retried.out
    assert (row["status"], row["attempts"]) == ("success", 2)
    assert [(d["delivery_id"], d["attempts"]) for d in succeeded] == [(delivery_id, 2)]
    assert len(copies) == 2


def test_errors_exit_non_zero_with_the_servers_message(admin):
    unknown = admin("services", "show", "no-such-heartbeat")
    assert unknown.code == 1 and "no service is registered as 'no-such-heartbeat'" in unknown.err
    assert unknown.out == ""
    bad = admin("services", "register", "x", "--service-name", "y", "--interval-minutes", "1",
                "--priority", "p9")
    assert bad.code == 2 and "must be one of p1, p2, p3, p4, p5" in bad.err
    nothing = admin("services", "update", "x")
    assert nothing.code == 2 and "nothing to change" in nothing.err


def test_unreachable_gateway_and_missing_key_are_explained(medic, monkeypatch, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    down = medic("--url", url, "--key", "mdk_whatever", "services", "list")
    assert down.code == 3 and f"cannot reach the Medic gateway at {url}" in down.err

    no_key = medic("--url", url, "alerts")
    assert no_key.code == 2 and "no API key" in no_key.err

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "admin.key").write_text("mdk_from_file\n")
    monkeypatch.setenv("MEDIC_DATA_DIR", str(tmp_path / "data"))
    from_file = medic("--url", url, "alerts")  # the key is found; only the gateway is missing
    assert from_file.code == 3 and "mdk_from_file" not in from_file.err


@pytest.mark.parametrize("name", ["team/nightly", "100% done?#1", "..", "."])
def test_a_name_with_slashes_or_other_characters_is_shown_updated_and_muted(admin, name):
    ok(admin("services", "register", name, "--service-name", "jobs", "--interval-minutes", "5"))
    shown = ok(admin("services", "show", name, "--json")).json()
    assert shown["heartbeat_name"] == name
    updated = ok(admin("--json", "services", "update", name, "--threshold", "2")).json()
    assert updated[0]["threshold"] == 2
    assert ok(admin("--json", "services", "mute", name)).json()["muted"] is True
    assert "deleted" in ok(admin("services", "delete", str(shown["service_id"]))).out.lower()
    gone = admin("services", "show", name)
    assert gone.code == 1 and "no service is registered as" in gone.err


def test_a_jobs_runs_and_stats_are_listed_and_its_job_fields_set_and_shown(admin):
    ok(admin("services", "register", "backup", "--service-name", "data", "--interval-minutes", "60",
             "--schedule", "30 2 * * *", "--timezone", "Europe/Berlin", "--max-duration", "900",
             "--min-duration", "5", "--failure-tolerance", "1"))
    shown = ok(admin("--json", "services", "show", "backup")).json()
    assert (shown["schedule"], shown["timezone"], shown["max_duration_seconds"], shown["min_duration_seconds"],
            shown["failure_tolerance"]) == ("30 2 * * *", "Europe/Berlin", 900, 5, 1)
    assert "30 2 * * * Europe/Berlin" in ok(admin("services", "list")).out
    table = ok(admin("services", "show", "backup")).out
    assert "schedule" in table and "Europe/Berlin" in table and "failure_tolerance" in table
    ok(admin("services", "update", "backup", "--failure-tolerance", "0", "--schedule", ""))
    updated = ok(admin("--json", "services", "show", "backup")).json()
    assert (updated["schedule"], updated["failure_tolerance"]) == (None, 0)

    ok(admin("heartbeat", "send", "backup", "--status", "STARTED", "--run-id", "n1"))
    ok(admin("heartbeat", "send", "backup", "--status", "COMPLETED", "--run-id", "n1",
             "--message", "exit 0\nbacked up 12 GB"))
    runs = ok(admin("--json", "runs", "list", "backup")).json()
    assert [(r["run_id"], r["status"], r["message"]) for r in runs] == [("n1", "completed", "exit 0\nbacked up 12 GB")]
    listed = ok(admin("runs", "list", "backup")).out
    assert listed.splitlines()[0].split()[:3] == ["ID", "RUN", "STATUS"] and "backed up 12 GB" in listed

    stats = ok(admin("--json", "runs", "stats", "backup")).json()
    assert (stats["run_count"], stats["p50_duration_ms"], stats["success_rate"]) == (1, None, 1.0)
    assert "no duration statistics below 5 completed runs (1 so far)" in ok(admin("runs", "stats", "backup")).out
    missing = admin("runs", "stats", "nobody")
    assert missing.code == 1 and "no service is registered as 'nobody'" in missing.err
