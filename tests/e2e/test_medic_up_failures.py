"""`medic up` when things go wrong: a busy port, a child that cannot start, an
outside restart of the embedded PostgreSQL; and `medic healthcheck` beside it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medic import health
from medic_cli.embedded import EmbeddedPostgres
from tests.support.system import medic_env, start_medic

pytestmark = pytest.mark.e2e

# Makes `medic serve routing` exit at once with an error while the file named by
# MEDIC_TEST_BREAK_ROUTING exists: a child that cannot start, in a real process tree.
BREAK_ROUTING = """\
import os, sys
if sys.argv[-2:] == ["serve", "routing"] and os.path.exists(os.environ.get("MEDIC_TEST_BREAK_ROUTING", "/nonexistent")):
    sys.stderr.write("RuntimeError: routing cannot start (broken on purpose by the test)\\n")
    sys.stderr.flush()
    os._exit(3)
"""


def run_medic(env: dict[str, str], *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medic_cli", *argv], env=env, capture_output=True,
                          text=True, timeout=timeout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_port_in_use_stops_medic_up_at_once_naming_it_and_its_variable(tmp_path, database_url):
    env, ports = medic_env(tmp_path, database_url)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["HEARTBEAT"]))
        squatter.listen()
        result = run_medic(env, "up")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"port {ports['HEARTBEAT']} (MEDIC_HEARTBEAT_PORT) is already in use: "
            "something that is not a Medic heartbeat service listens there") in output
    assert "nothing was started" in output
    assert "Medic is up" not in output and "Traceback" not in output


def test_a_second_medic_up_on_the_same_ports_says_a_medic_answers_there(medic_up):
    result = run_medic(medic_up.env, "up")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    gateway_port = medic_up.gateway_url.rsplit(":", 1)[1]
    assert (f"port {gateway_port} (MEDIC_GATEWAY_PORT) is already in use: a Medic gateway answers "
            "there (is another `medic up` running?)") in output
    assert "a Medic heartbeat service answers there" in output
    assert "MEDIC_HEARTBEAT_METRICS_PORT" in output and "Medic is up" not in output
    assert medic_up.process.poll() is None  # the first one is untouched


@pytest.fixture
def breakable(tmp_path):
    """Environment additions that break `medic serve routing` while ``flag`` exists."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BREAK_ROUTING)
    flag = tmp_path / "break-routing"
    extra = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
             "MEDIC_TEST_BREAK_ROUTING": str(flag)}
    return extra, flag


def test_a_child_that_cannot_start_stops_medic_up_with_its_error(tmp_path, database_url, breakable):
    extra, flag = breakable
    flag.touch()
    env, _ports = medic_env(tmp_path, database_url, extra)
    result = run_medic(env, "up")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert ("routing exited before it was ready 3 times in a row (last exit code 3); its last error: "
            "RuntimeError: routing cannot start (broken on purpose by the test)") in output
    assert "Medic is up" not in output and "Medic stopped." in output


def test_a_crash_after_a_healthy_start_restarts_and_a_crash_loop_then_stops_everything(
        tmp_path, database_url, breakable):
    extra, flag = breakable
    medic = start_medic(tmp_path, database_url, extra)
    try:
        others = [medic.child_pid(name) for name in ("gateway", "auth", "heartbeat", "delivery")]
        os.kill(medic.child_pid("routing"), signal.SIGKILL)  # a crash after a healthy start
        deadline = time.monotonic() + 30
        while not any("routing exited (code -9" in line for line in medic.output):
            assert time.monotonic() < deadline, "".join(medic.output[-20:])
            time.sleep(0.2)
        restarted = time.monotonic() + 30
        routing = f"127.0.0.1:{medic.env['MEDIC_ROUTING_PORT']}"
        # Restarted and ready again: a child that merely exists may not have started yet, and
        # the flag below would then break this start instead of the next one.
        while not health.grpc_serving(routing):
            assert time.monotonic() < restarted, "".join(medic.output[-20:])
            time.sleep(0.2)
        assert medic.process.poll() is None

        flag.touch()  # from now on routing cannot start
        os.kill(medic.child_pid("routing"), signal.SIGKILL)
        code = medic.process.wait(90)
    finally:
        medic.stop()
    output = "".join(medic.output)
    assert code == 1, output
    assert "routing exited before it was ready 3 times in a row" in output
    assert "RuntimeError: routing cannot start (broken on purpose by the test)" in output
    assert not any(alive(pid) for pid in others)


def test_healthcheck_without_a_process_checks_every_process_of_medic_up(medic_up):
    result = run_medic(medic_up.env, "healthcheck")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == ["auth", "delivery", "gateway", "heartbeat", "remediation",
                                                                  "routing"]
    assert all(line.split()[-1] == "healthy" for line in lines)
    monitor = run_medic(medic_up.env, "healthcheck", "monitor")  # it runs inside heartbeat
    assert monitor.returncode == 0, monitor.stderr

    medic_up.stop()
    after = run_medic(medic_up.env, "healthcheck")
    assert after.returncode == 2
    assert ("name a process: medic healthcheck {auth,heartbeat,routing,delivery,remediation,monitor,gateway}"
            in after.stderr)


def test_stopping_medic_up_stops_the_embedded_postgresql_after_an_outside_restart(tmp_path):
    from pgserver._commands import pg_ctl

    medic = start_medic(tmp_path, None)
    embedded = EmbeddedPostgres(Path(medic.env["MEDIC_DATA_DIR"]))
    try:
        first = embedded.running_postmaster()
        assert first is not None
        # An operator restarts it behind medic up's back (as the user pgserver runs it as).
        pg_ctl(["-w", "restart", "-m", "fast"], pgdata=embedded.folder,
               user="pgserver" if os.geteuid() == 0 else None)
        second = embedded.running_postmaster()
        assert second is not None and second.pid != first.pid
    finally:
        assert medic.stop() == 0
    assert embedded.running_postmaster() is None
