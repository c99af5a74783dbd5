"""`medic healthcheck` and `medic bootstrap-admin`, the commands containers use, and
`medic config`, run as operators run it."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from medic_cli import ops
from medic_cli.main import main
from medic.config import Settings
from medic.server import create_server
from tests.support.authorizers import AllowAll
from services.heartbeat import app as heartbeat_app
from tests.support.ports import free_port


def test_served_process_is_read_from_a_medic_serve_command_line():
    assert ops.served_process(b"/usr/local/bin/python\0/usr/local/bin/medic\0serve\0monitor\0") == "monitor"
    assert ops.served_process(b"medic\0migrate\0") is None
    assert ops.served_process(b"") is None


def test_healthcheck_passes_while_the_service_serves_and_fails_after(database_url, db):
    settings = Settings(database_url=database_url, monitor_enabled=False)
    running = create_server(heartbeat_app.build(settings, db=db), port=0, workers=4, authorizer=AllowAll())
    running.check_readiness()
    probe = Settings(heartbeat_port=running.port)
    try:
        assert ops.check_grpc(probe, "heartbeat")
    finally:
        running.stop(grace=1)
    assert not ops.check_grpc(probe, "heartbeat")


def test_healthcheck_of_the_monitor_checks_heartbeat_when_the_monitor_runs_inside_it(database_url, db):
    settings = Settings(database_url=database_url, monitor_enabled=False)
    running = create_server(heartbeat_app.build(settings, db=db), port=0, workers=4, authorizer=AllowAll())
    running.check_readiness()
    try:  # no monitor process: the monitor port is free
        inside = Settings(heartbeat_port=running.port, monitor_port=free_port())
        assert ops.check(inside, "monitor")
        assert not ops.check(Settings(heartbeat_port=running.port, monitor_port=free_port(),
                                      monitor_enabled=False), "monitor")
    finally:
        running.stop(grace=1)


def test_healthcheck_without_a_process_outside_a_container_says_how_to_name_one(tmp_path, monkeypatch,
                                                                               capsys):
    init = tmp_path / "cmdline"
    init.write_bytes(b"/sbin/init\0")
    monkeypatch.setattr(ops, "PID1_CMDLINE", init)
    monkeypatch.setenv("MEDIC_DATA_DIR", str(tmp_path))
    assert main(["healthcheck"]) == 2
    assert "name a process: medic healthcheck {" in capsys.readouterr().err
    init.write_bytes(b"/usr/local/bin/python\0/usr/local/bin/medic\0migrate\0")  # a one-shot container
    assert main(["healthcheck"]) == 0


def test_healthcheck_of_the_gateway_asks_its_liveness_route(gateway, monkeypatch):
    monkeypatch.setenv("MEDIC_GATEWAY_PORT", str(gateway.port))
    assert main(["healthcheck", "gateway"]) == 0
    monkeypatch.setenv("MEDIC_GATEWAY_PORT", str(free_port()))
    assert main(["healthcheck", "gateway"]) == 1


def test_bootstrap_admin_creates_the_first_key_once(database_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("MEDIC_DATA_DIR", str(tmp_path))

    assert main(["bootstrap-admin"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("mdk_")
    key_file = tmp_path / "admin.key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    assert main(["bootstrap-admin"]) == 0  # keys exist: nothing created, nothing printed
    assert capsys.readouterr().out == ""


def test_bootstrap_admin_creates_a_key_again_once_no_admin_key_is_active(database_url, db, tmp_path,
                                                                        monkeypatch, capsys):
    """The recovery when every admin key is gone (expired, or revoked in the database):
    other keys do not count, only an active admin key stops it."""
    monkeypatch.setenv("MEDIC_DATABASE_URL", database_url)
    monkeypatch.setenv("MEDIC_DATA_DIR", str(tmp_path))
    assert main(["bootstrap-admin"]) == 0
    first = capsys.readouterr().out.strip()
    db.execute("UPDATE api_keys SET expires_at = now() - interval '1 second'")
    db.execute("INSERT INTO api_keys (key_id, name, key_hash, scopes) "
               "VALUES ('ReadOnlyKey1', 'reader', 'x', ARRAY['read'])")

    assert main(["bootstrap-admin"]) == 0
    out, err = capsys.readouterr()
    second = out.strip()
    assert second.startswith("mdk_") and second != first
    assert "No active admin API key" in err
    assert (tmp_path / "admin.key").read_text().strip() == second

    db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (second.split("_")[1],))
    assert main(["bootstrap-admin"]) == 0
    assert capsys.readouterr().out.strip().startswith("mdk_")
    assert main(["bootstrap-admin"]) == 0  # now one is active: nothing
    assert capsys.readouterr().out == ""


def run_medic_config(**variables: str) -> subprocess.CompletedProcess:
    """`medic config` as a process (the installed entry point), with only ``variables`` of MEDIC_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    env.update(variables)
    return subprocess.run([str(Path(sys.executable).with_name("medic")), "config"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_medic_config_masks_secrets_and_warns_about_unknown_variables():
    secrets = {"MEDIC_SLACK_TOKEN": "xoxb-secret-value", "MEDIC_SERVICE_TOKEN": "mds_secret-service-token",
               "MEDIC_DATABASE_URL": "postgresql://medic:hunter2@db/medic", "MEDIC_API_KEY": "mdk_secret-key"}
    result = run_medic_config(**secrets, MEDIC_BOGUS="1", MEDIC_GATEWAY_PORT="8181")

    assert result.returncode == 0, result.stderr
    printed = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert printed["MEDIC_GATEWAY_PORT"] == "8181"
    for name, value in secrets.items():
        assert printed[name] == "***"
        assert value not in result.stdout + result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "MEDIC_BOGUS" in result.stderr and "MEDIC_BOGUS" not in printed


def test_medic_config_exits_2_naming_an_invalid_variable():
    result = run_medic_config(MEDIC_GATEWAY_PORT="notaport", MEDIC_SLACK_TOKEN="xoxb-secret-value")

    assert result.returncode == 2
    assert "MEDIC_GATEWAY_PORT" in result.stderr and "notaport" in result.stderr
    assert result.stdout == ""
    assert "xoxb-secret-value" not in result.stderr
