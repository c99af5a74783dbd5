"""The ``medic`` command: the top of the program, above the runtime (``medic``), the
services and the gateway. Nothing below imports this package.

    medic up [--replicas N]     everything on this machine (embedded PostgreSQL unless
                                MEDIC_DATABASE_URL is set), Ctrl-C stops it
    medic migrate               apply pending migrations to MEDIC_DATABASE_URL
    medic serve <process>       run one process: heartbeat | routing | monitor | gateway
    medic config                print the effective configuration (secrets masked)
    medic protos                regenerate medic/v1/*_pb2*.py from protos/
    medic <resource> ...        manage Medic through the gateway (see medic --help)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from medic import logs
from medic.config import GRPC_SERVICES, ConfigError, Settings

# `monitor` runs the monitor and the hand-off alone (they also run inside heartbeat).
PROCESSES = (*GRPC_SERVICES, "monitor", "gateway")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"medic: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_up(args) -> int:
    from medic_cli import launcher

    logs.setup("launcher", "WARNING")
    return launcher.up(_settings(), replicas=args.replicas)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cmd_migrate(args) -> int:
    import psycopg2

    from medic import migrate

    settings = _settings()
    logs.setup("migrate", settings.log_level)
    if not settings.database_url:
        print("medic migrate: set MEDIC_DATABASE_URL (or use `medic up`, which migrates the embedded "
              "database)", file=sys.stderr)
        return 2
    try:
        applied = migrate.migrate(settings.database_url)
    except migrate.MigrationError as exc:
        print(f"medic migrate: {exc}", file=sys.stderr)
        return 1
    except psycopg2.OperationalError as exc:
        print(f"medic migrate: cannot reach the database: {_first_line(exc)}", file=sys.stderr)
        return 1
    except psycopg2.Error as exc:  # e.g. no right to create the schema
        print(f"medic migrate: {_first_line(exc)}", file=sys.stderr)
        return 1
    print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    return 0


def cmd_serve(args) -> int:
    settings = _settings()
    logs.setup(args.process, settings.log_level)
    if args.process == "gateway":
        from gateway.app import serve

        return serve(settings)
    if not settings.database_url:
        print(f"medic serve {args.process}: MEDIC_DATABASE_URL is required", file=sys.stderr)
        return 2
    from medic import server
    from medic_cli import wiring

    if args.process == "monitor":
        from services.heartbeat.app import build_monitor

        component = build_monitor(settings)
    else:
        component = importlib.import_module(f"services.{args.process}.app").build(settings)
    return server.run(component, host=settings.host, port=settings.grpc_port(args.process),
                      metrics_port=settings.metrics_port(args.process), workers=settings.grpc_workers,
                      grace=settings.shutdown_grace_seconds,
                      authorizer=wiring.service_authorizer(settings, args.process, component))


def cmd_config(args) -> int:
    for name, value in _settings().masked().items():
        print(f"{name}={value}")
    return 0


def cmd_protos(args) -> int:
    from medic_cli import protogen

    return protogen.main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medic", description="Heartbeat monitoring for services and jobs.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run everything locally")
    up.add_argument("--replicas", type=int, default=1, metavar="N",
                    help="run N of every process, balanced, with rate limits in Redis (default 1)")
    up.set_defaults(func=cmd_up)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    serve = commands.add_parser("serve", help="run one Medic process")
    serve.add_argument("process", choices=PROCESSES)
    serve.set_defaults(func=cmd_serve)
    commands.add_parser("config", help="print the effective configuration").set_defaults(func=cmd_config)
    commands.add_parser("protos", help="regenerate code from protos/").set_defaults(func=cmd_protos)
    from medic_cli import ops  # healthcheck, bootstrap-admin (for containers)

    ops.register(commands)
    from medic_cli import commands as gateway_commands  # keys, services, heartbeat, alerts, ...

    gateway_commands.register(parser, commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)

