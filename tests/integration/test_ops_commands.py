"""`medic healthcheck` and `medic bootstrap-admin`, the commands containers use."""
from __future__ import annotations

import stat

from medic import opscommands
from medic.cli import main
from medic.config import Settings
from medic.server import create_server
from services.heartbeat import app as heartbeat_app
from tests.conftest import free_port


def test_served_process_is_read_from_a_medic_serve_command_line():
    assert opscommands.served_process(b"/usr/local/bin/python\0/usr/local/bin/medic\0serve\0monitor\0") == "monitor"
    assert opscommands.served_process(b"medic\0migrate\0") is None
    assert opscommands.served_process(b"") is None


def test_healthcheck_passes_while_the_service_serves_and_fails_after(database_url, db):
    settings = Settings(database_url=database_url, monitor_enabled=False)
    running = create_server(heartbeat_app.build(settings, db=db), port=0, workers=4)
    running.check_readiness()
    probe = Settings(heartbeat_port=running.port)
    try:
        assert opscommands.check_grpc(probe, "heartbeat")
    finally:
        running.stop(grace=1)
    assert not opscommands.check_grpc(probe, "heartbeat")


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
