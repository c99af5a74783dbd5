"""Operator commands for deployments (containers, orchestrators):

    medic healthcheck [process]   exit 0 when the process answers its health check (gRPC
                                  grpc.health.v1 Check for the services and the monitor, GET
                                  /health/live for the gateway; `monitor` is checked on the
                                  heartbeat service when no monitor process serves and
                                  MEDIC_MONITOR_ENABLED is true, as under `medic up`). With no
                                  process: the one PID 1 serves (`medic serve <process>`), which
                                  lets one Dockerfile HEALTHCHECK fit every process of the image;
                                  else every process of the `medic up` running with this
                                  MEDIC_DATA_DIR; else it says how to name one (exit 2)
    medic bootstrap-admin         apply pending migrations, then create an admin API key when
                                  no active admin key exists (the first start, or the recovery
                                  when every admin key expired): printed once on stdout and
                                  written to $MEDIC_DATA_DIR/admin.key (mode 0600)

    medic secrets rotate          seal every step secret sealed under an earlier key again under
                                  MEDIC_SECRETS_KEY (the earlier keys in MEDIC_SECRETS_PREVIOUS_KEYS);
                                  needs MEDIC_DATABASE_URL (docs/remediation.md, Secrets)

Registered in ``medic_cli/main.py`` by ``register(commands)``; ``secrets rotate`` by
``register_rotate`` under the ``medic secrets`` group of the management commands.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from medic.config import GRPC_SERVICES, ConfigError, Settings

PROCESSES = (*GRPC_SERVICES, "monitor", "gateway")
HEALTHCHECK_TIMEOUT_SECONDS = 3.0
PID1_CMDLINE = Path("/proc/1/cmdline")
UP_STATE_FILE = "up.json"  # written by `medic up` (medic_cli.launcher.STATE_FILE)


def _settings() -> Settings:
    try:
        return Settings.from_env(warn_unknown=False)
    except ConfigError as exc:
        print(f"medic: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def served_process(cmdline: bytes) -> str | None:
    """The process of a `medic serve <process>` command line (NUL-separated), else None."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    for i, arg in enumerate(args[:-1]):
        if arg == "serve" and args[i + 1] in PROCESSES:
            return args[i + 1]
    return None


def _local_host(settings: Settings) -> str:
    # The check runs beside the process: a wildcard bind address is reached on loopback.
    # (Never MEDIC_<SERVICE>_TARGET: in a deployment that names every replica, not this one.)
    return "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host


def check_gateway(settings: Settings) -> bool:
    from medic import health  # grpc is imported only by the commands that need it

    return health.http_alive(f"http://{_local_host(settings)}:{settings.gateway_port}/health/live",
                             HEALTHCHECK_TIMEOUT_SECONDS)


def check_grpc(settings: Settings, process: str) -> bool:
    from medic import health

    return health.grpc_serving(f"{_local_host(settings)}:{settings.grpc_port(process)}",
                               timeout=HEALTHCHECK_TIMEOUT_SECONDS)


def check_monitor(settings: Settings) -> bool:
    if check_grpc(settings, "monitor"):
        return True
    # Under `medic up` (and wherever MEDIC_MONITOR_ENABLED is true) the monitor runs
    # inside the heartbeat process, and no monitor port is served.
    return settings.monitor_enabled and check_grpc(settings, "heartbeat")


def check(settings: Settings, process: str) -> bool:
    if process == "gateway":
        return check_gateway(settings)
    if process == "monitor":
        return check_monitor(settings)
    return check_grpc(settings, process)


def is_medic_command(cmdline: bytes) -> bool:
    """Whether a command line (NUL-separated) runs `medic` (e.g. a one-shot `medic migrate`)."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    return any(Path(a).name in ("medic", "medic_cli") for a in args[:3])


def running_up(settings: Settings) -> dict | None:
    """What the `medic up` running with this data directory wrote about itself, if it runs."""
    path = Path(settings.data_dir) / UP_STATE_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def check_up(settings: Settings, state: dict) -> int:
    unhealthy = []
    for process in state["processes"]:
        port = int(process["port"])
        name = process["name"]
        probe = dataclasses.replace(settings, **{f"{name}_port": port})
        healthy = check_gateway(probe) if name == "gateway" else check_grpc(probe, name)
        print(f"{process['label']:<12} {port:<6} {'healthy' if healthy else 'NOT HEALTHY'}")
        if not healthy:
            unhealthy.append(process["label"])
    if unhealthy:
        print(f"medic healthcheck: not healthy: {', '.join(unhealthy)}", file=sys.stderr)
        return 1
    return 0


def cmd_healthcheck(args) -> int:
    process = args.process
    settings = _settings()
    if process is None:
        try:
            pid1 = PID1_CMDLINE.read_bytes()
        except OSError:
            pid1 = b""
        process = served_process(pid1)
        if process is None:
            state = running_up(settings)
            if state is not None:
                return check_up(settings, state)
            if is_medic_command(pid1):  # a one-shot command (migrate, bootstrap-admin): nothing serves
                print("medic healthcheck: no `medic serve` process to check", file=sys.stderr)
                return 0
            print("medic healthcheck: no `medic up` runs with MEDIC_DATA_DIR="
                  f"{Path(settings.data_dir).resolve()} and this is no `medic serve` container; "
                  f"name a process: medic healthcheck {{{','.join(PROCESSES)}}} "
                  "(its port from MEDIC_<PROCESS>_PORT)", file=sys.stderr)
            return 2
    if not check(settings, process):
        print(f"medic healthcheck: {process} is not healthy", file=sys.stderr)
        return 1
    return 0


def cmd_bootstrap_admin(args) -> int:
    from medic import migrate
    from medic.db import Database, wait_until_reachable
    from services.auth import bootstrap

    settings = _settings()
    if not settings.database_url:
        print("medic bootstrap-admin: set MEDIC_DATABASE_URL (`medic up` does this by itself)",
              file=sys.stderr)
        return 2
    wait_until_reachable(settings.database_url)
    migrate.migrate(settings.database_url)  # idempotent; so it works before any service started
    db = Database(settings.database_url, 1, application_name="medic-bootstrap-admin")
    try:
        key = bootstrap.bootstrap_admin_key(settings, db)
    finally:
        db.close()
    if key is None:
        print("medic bootstrap-admin: an active admin API key exists already; nothing created "
              "(create more with an admin key: POST /v2/api-keys)", file=sys.stderr)
        return 0
    key_file = (Path(settings.data_dir) / bootstrap.ADMIN_KEY_FILE).resolve()
    print("No active admin API key existed: created one. It is shown this once and kept in "
          f"{key_file} (mode 0600):", file=sys.stderr)
    print(key, flush=True)
    return 0


def register(commands) -> None:
    """Adds the operator commands to `medic`'s sub-command parser."""
    check = commands.add_parser("healthcheck", help="exit 0 when a local Medic process is healthy")
    check.add_argument("process", nargs="?", choices=PROCESSES,
                       help="default: the process PID 1 serves (in a container), else every "
                            "process of the running `medic up`")
    check.set_defaults(func=cmd_healthcheck)
    commands.add_parser("bootstrap-admin", help="create an admin API key when no active one exists") \
        .set_defaults(func=cmd_bootstrap_admin)


def cmd_secrets_rotate(args) -> int:
    from medic.db import Database
    from medic.errors import MedicError
    from services.remediation.secrets import Keyring, SecretStore

    settings = _settings()
    if not settings.database_url:
        print("medic secrets rotate: set MEDIC_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        keyring = Keyring(settings.secrets_key, settings.secrets_previous_keys)
    except ConfigError as exc:
        print(f"medic secrets rotate: {exc}", file=sys.stderr)
        return 2
    db = Database(settings.database_url, 1, application_name="medic-secrets-rotate")
    try:
        rotated = SecretStore(db, keyring).rotate()
    except MedicError as exc:
        print(f"medic secrets rotate: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"re-sealed {rotated} secret(s) under the current MEDIC_SECRETS_KEY")
    return 0


def register_rotate(secrets_commands) -> None:
    secrets_commands.add_parser(
        "rotate", help="re-seal every secret under MEDIC_SECRETS_KEY (after a key rotation; local, "
                       "needs MEDIC_DATABASE_URL)").set_defaults(func=cmd_secrets_rotate)
