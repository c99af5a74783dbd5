"""Every ``MEDIC_*`` environment variable, read in one place.

``Settings.from_env()`` reads and validates them once per process into a frozen
dataclass; an invalid value stops the process with an error that names the
variable. Each field carries its variable name, default and a one-line doc, so
the configuration reference in ``docs/operations.md`` can be checked against
this module.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


# The Medic gRPC services, in the order `medic up` starts them (the gateway comes after).
GRPC_SERVICES = ("auth", "heartbeat", "routing", "delivery", "remediation")


# MEDIC_* variables read by the tests (tests/) and the benchmarks (bench/), not by
# Medic: never warned about as unknown.
NOT_MEDIC_SETTINGS = ("MEDIC_TEST_", "MEDIC_BENCH_")


class ConfigError(ValueError):
    """A MEDIC_* variable has a value Medic cannot use."""


def _var(env: str, default: Any, doc: str, *, parse: Callable[[str], Any] | None = None,
         secret: bool = False) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc, "parse": parse, "secret": secret})


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port number 0-65535")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected an integer >= 1")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("expected a number >= 0")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("expected a number > 0")
    return value


def _delays(raw: str) -> tuple[float, ...]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    values = tuple(float(p) for p in parts)
    if any(v < 0 for v in values):
        raise ValueError("expected comma-separated seconds >= 0, e.g. 1,5,30")
    return values


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return value


@dataclass(frozen=True)
class Settings:
    # --- storage -----------------------------------------------------------
    database_url: str = _var("MEDIC_DATABASE_URL", "",
                             "libpq URI of PostgreSQL; empty: `medic up` starts an embedded one",
                             secret=True)
    data_dir: Path = _var("MEDIC_DATA_DIR", Path(".medic"),
                          "embedded database, admin key and other local state", parse=Path)
    db_pool_size: int = _var("MEDIC_DB_POOL_SIZE", 10,
                             "PostgreSQL connections per process", parse=_positive_int)

    # --- ports ---------------------------------------------------------------
    host: str = _var("MEDIC_HOST", "127.0.0.1", "address the servers bind to")
    gateway_port: int = _var("MEDIC_GATEWAY_PORT", 8080, "HTTP gateway port (also serves /metrics)",
                             parse=_port)
    auth_port: int = _var("MEDIC_AUTH_PORT", 50051, "auth service gRPC port", parse=_port)
    heartbeat_port: int = _var("MEDIC_HEARTBEAT_PORT", 50052, "heartbeat service gRPC port",
                               parse=_port)
    routing_port: int = _var("MEDIC_ROUTING_PORT", 50053, "routing service gRPC port", parse=_port)
    delivery_port: int = _var("MEDIC_DELIVERY_PORT", 50054, "delivery service gRPC port",
                              parse=_port)
    remediation_port: int = _var("MEDIC_REMEDIATION_PORT", 50056, "remediation service gRPC port",
                                 parse=_port)
    monitor_port: int = _var("MEDIC_MONITOR_PORT", 50055,
                             "gRPC port (health only) of a stand-alone monitor process", parse=_port)
    auth_metrics_port: int = _var("MEDIC_AUTH_METRICS_PORT", 9151,
                                  "auth service Prometheus port", parse=_port)
    heartbeat_metrics_port: int = _var("MEDIC_HEARTBEAT_METRICS_PORT", 9152,
                                       "heartbeat service Prometheus port", parse=_port)
    routing_metrics_port: int = _var("MEDIC_ROUTING_METRICS_PORT", 9153,
                                     "routing service Prometheus port", parse=_port)
    delivery_metrics_port: int = _var("MEDIC_DELIVERY_METRICS_PORT", 9154,
                                      "delivery service Prometheus port", parse=_port)
    remediation_metrics_port: int = _var("MEDIC_REMEDIATION_METRICS_PORT", 9156,
                                         "remediation service Prometheus port", parse=_port)
    monitor_metrics_port: int = _var("MEDIC_MONITOR_METRICS_PORT", 9155,
                                     "stand-alone monitor Prometheus port", parse=_port)

    # --- where the services are (gRPC targets; a DNS name resolving to every
    # replica is balanced round-robin) --------------------------------------
    auth_target: str = _var("MEDIC_AUTH_TARGET", "", "gRPC target of auth; empty: host:auth_port")
    heartbeat_target: str = _var("MEDIC_HEARTBEAT_TARGET", "",
                                 "gRPC target of heartbeat; empty: host:heartbeat_port")
    routing_target: str = _var("MEDIC_ROUTING_TARGET", "",
                               "gRPC target of routing; empty: host:routing_port")
    delivery_target: str = _var("MEDIC_DELIVERY_TARGET", "",
                                "gRPC target of delivery; empty: host:delivery_port")
    remediation_target: str = _var("MEDIC_REMEDIATION_TARGET", "",
                                   "gRPC target of remediation; empty: host:remediation_port")

    # --- processes -----------------------------------------------------------
    grpc_workers: int = _var("MEDIC_GRPC_WORKERS", 32, "threads serving RPCs per service process",
                             parse=_positive_int)
    shutdown_grace_seconds: float = _var("MEDIC_SHUTDOWN_GRACE_SECONDS", 10.0,
                                         "time in-flight work gets after SIGTERM",
                                         parse=_non_negative_float)
    log_level: str = _var("MEDIC_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR",
                          parse=_log_level)
    rpc_timeout_seconds: float = _var("MEDIC_RPC_TIMEOUT_SECONDS", 5.0,
                                      "deadline of RPCs between Medic processes",
                                      parse=_positive_float)
    max_body_bytes: int = _var("MEDIC_MAX_BODY_BYTES", 65536,
                               "largest HTTP request body the gateway accepts",
                               parse=_positive_int)

    # --- heartbeat ingest ----------------------------------------------------
    ingest_batch_max: int = _var("MEDIC_INGEST_BATCH_MAX", 500,
                                 "heartbeats committed together in one transaction at most",
                                 parse=_positive_int)
    ingest_writers: int = _var("MEDIC_INGEST_WRITERS", 2,
                               "concurrent ingest transactions per heartbeat process",
                               parse=_positive_int)

    # --- delivery (services/delivery) -----------------------------------------
    delivery_retry_delays: tuple[float, ...] = _var(
        "MEDIC_DELIVERY_RETRY_DELAYS", (1.0, 5.0, 30.0),
        "seconds between a delivery's attempts (first attempt at once); 1,5,30 = 4 attempts",
        parse=_delays)
    delivery_retry_after_cap_seconds: float = _var(
        "MEDIC_DELIVERY_RETRY_AFTER_CAP_SECONDS", 300.0,
        "longest Retry-After of a receiver that is honoured", parse=_non_negative_float)
    delivery_workers: int = _var("MEDIC_DELIVERY_WORKERS", 32,
                                 "deliveries sent at the same time per delivery process",
                                 parse=_positive_int)
    delivery_per_destination: int = _var(
        "MEDIC_DELIVERY_PER_DESTINATION", 8,
        "deliveries in flight to one destination (host or channel) per process, so a slow "
        "receiver cannot take every worker", parse=_positive_int)
    delivery_lease_seconds: float = _var(
        "MEDIC_DELIVERY_LEASE_SECONDS", 60.0,
        "a claimed delivery is taken over by another worker after this long (> HTTP timeout)",
        parse=_positive_float)
    delivery_http_timeout_seconds: float = _var(
        "MEDIC_DELIVERY_HTTP_TIMEOUT_SECONDS", 10.0, "timeout of one HTTP attempt",
        parse=_positive_float)
    delivery_poll_seconds: float = _var(
        "MEDIC_DELIVERY_POLL_SECONDS", 0.2, "how often an idle worker looks for due deliveries",
        parse=_positive_float)
    slack_api_url: str = _var("MEDIC_SLACK_API_URL", "https://slack.com/api",
                              "base URL of the Slack Web API (chat.postMessage)")
    slack_token: str = _var("MEDIC_SLACK_TOKEN", "", "Slack bot token", secret=True)
    pagerduty_events_url: str = _var("MEDIC_PAGERDUTY_EVENTS_URL",
                                     "https://events.pagerduty.com/v2/enqueue",
                                     "PagerDuty Events API v2 endpoint")
    webhook_allow_private: bool = _var(
        "MEDIC_WEBHOOK_ALLOW_PRIVATE", False,
        "allow webhooks to loopback, private, link-local and metadata addresses (tests, labs)",
        parse=_bool)

    # --- auth and rate limits (auth domain, medic/authz/, medic/ratelimit.py) ---
    service_token: str = _var(
        "MEDIC_SERVICE_TOKEN", "",
        "service credential shared by Medic processes (`mds_...`); `medic up` generates one "
        "into $MEDIC_DATA_DIR/service.token", secret=True)
    auth_cache_ttl_seconds: float = _var(
        "MEDIC_AUTH_CACHE_TTL_SECONDS", 10.0,
        "how long a process trusts a verified key; revocation takes effect within it",
        parse=_non_negative_float)
    auth_failures_per_key_per_minute: int = _var(
        "MEDIC_AUTH_FAILURES_PER_KEY_PER_MINUTE", 10,
        "failed verifications of one key id a minute; past them a key not yet verified "
        "gets 429 without any argon2 work (a key already verified still passes)",
        parse=_positive_int)
    auth_failures_per_ip_per_minute: int = _var(
        "MEDIC_AUTH_FAILURES_PER_IP_PER_MINUTE", 30,
        "failed key verifications from one client IP a minute, then the same", parse=_positive_int)
    auth_verify_concurrency: int = _var(
        "MEDIC_AUTH_VERIFY_CONCURRENCY", 4,
        "argon2 verifications at once per auth process; a key to verify past them gets a fast "
        "UNAVAILABLE (503) instead of waiting in a queue", parse=_positive_int)
    allow_anonymous_heartbeats: bool = _var(
        "MEDIC_ALLOW_ANONYMOUS_HEARTBEATS", False,
        "accept heartbeats without a key, rate limited per client IP", parse=_bool)
    redis_url: str = _var("MEDIC_REDIS_URL", "",
                          "Redis for rate limits shared by replicas; empty: in-memory per process",
                          secret=True)
    rate_limit_heartbeat_per_minute: int = _var(
        "MEDIC_RATE_LIMIT_HEARTBEAT_PER_MINUTE", 100,
        "heartbeat requests per minute per key unless overridden",
        parse=_positive_int)
    rate_limit_anonymous_heartbeat_per_minute: int = _var(
        "MEDIC_RATE_LIMIT_ANONYMOUS_HEARTBEAT_PER_MINUTE", 1000,
        "heartbeat requests per minute per client IP without a key (with "
        "MEDIC_ALLOW_ANONYMOUS_HEARTBEATS); every client behind one NAT shares it",
        parse=_positive_int)
    rate_limit_management_per_minute: int = _var(
        "MEDIC_RATE_LIMIT_MANAGEMENT_PER_MINUTE", 20,
        "management requests per minute per key unless overridden", parse=_positive_int)
    rate_limit_console_per_minute: int = _var(
        "MEDIC_RATE_LIMIT_CONSOLE_PER_MINUTE", 600,
        "web console page views per minute per signed-in key (its management limit when that "
        "is higher); console forms that change something count as management requests",
        parse=_positive_int)
    rate_limit_playbook_execute_per_minute: int = _var(
        "MEDIC_RATE_LIMIT_PLAYBOOK_EXECUTE_PER_MINUTE", 10,
        "playbook executions started by hand (POST /v2/playbooks/<id>/execute) per minute per key",
        parse=_positive_int)
    rate_limit_webhook_trigger_per_minute: int = _var(
        "MEDIC_RATE_LIMIT_WEBHOOK_TRIGGER_PER_MINUTE", 10,
        "playbook triggers per minute per client IP on POST /v2/webhooks/playbooks/<id>/trigger",
        parse=_positive_int)

    # --- monitor and alert lifecycle (heartbeat domain) ------------------------
    monitor_enabled: bool = _var(
        "MEDIC_MONITOR_ENABLED", True,
        "run the monitor and the hand-off to routing inside the heartbeat service process "
        "(`medic serve monitor` runs them as a process of their own)", parse=_bool)
    monitor_tick_seconds: float = _var(
        "MEDIC_MONITOR_TICK_SECONDS", 0.25, "pause between monitor passes (at most 1 s is sensible)",
        parse=_positive_float)
    monitor_batch: int = _var("MEDIC_MONITOR_BATCH", 500,
                              "overdue services claimed per transaction", parse=_positive_int)
    mute_ttl_seconds: float = _var("MEDIC_MUTE_TTL_SECONDS", 86400.0,
                                   "the longest a mute lasts (default 24 h), whatever its until; "
                                   "one without until ends sooner, when the service recovers",
                                   parse=_positive_float)
    reminder_min_seconds: float = _var(
        "MEDIC_REMINDER_MIN_SECONDS", 60.0,
        "REMINDERs come every alert_interval but never closer together than this",
        parse=_positive_float)
    handoff_workers: int = _var("MEDIC_HANDOFF_WORKERS", 8,
                                "hand-off threads, each handing up to 32 notifications to routing per RouteAlerts call",
                                parse=_positive_int)
    handoff_lease_seconds: float = _var(
        "MEDIC_HANDOFF_LEASE_SECONDS", 30.0,
        "a claimed notification is retried by any monitor after this long without an answer",
        parse=_positive_float)
    handoff_poll_seconds: float = _var(
        "MEDIC_HANDOFF_POLL_SECONDS", 0.2,
        "how often the hand-off looks for notifications written by other processes",
        parse=_positive_float)

    # --- routing (services/routing) --------------------------------------------
    slack_default_channel: str = _var(
        "MEDIC_SLACK_DEFAULT_CHANNEL", "",
        "Slack channel id for alerts of services with no target and no team channel; "
        "empty: such alerts are unrouted")

    # --- remediation (services/remediation) ------------------------------------
    remediation_workers: int = _var(
        "MEDIC_REMEDIATION_WORKERS", 8, "executions advanced at the same time per remediation process",
        parse=_positive_int)
    remediation_poll_seconds: float = _var(
        "MEDIC_REMEDIATION_POLL_SECONDS", 0.2,
        "how often an idle remediation worker looks for due executions", parse=_positive_float)
    remediation_condition_poll_seconds: float = _var(
        "MEDIC_REMEDIATION_CONDITION_POLL_SECONDS", 1.0,
        "pause between two checks of a condition step", parse=_positive_float)
    remediation_breaker_max_executions: int = _var(
        "MEDIC_REMEDIATION_BREAKER_MAX_EXECUTIONS", 5,
        "circuit breaker: executions per service within the window; the next one is refused",
        parse=_positive_int)
    remediation_breaker_window_seconds: float = _var(
        "MEDIC_REMEDIATION_BREAKER_WINDOW_SECONDS", 3600.0,
        "circuit breaker: the sliding window executions are counted in", parse=_positive_float)
    remediation_scripts_dir: str = _var(
        "MEDIC_REMEDIATION_SCRIPTS_DIR", "",
        "directory of the scripts playbooks may run (a script step names a file in it); "
        "empty: script steps fail")
    secrets_key: str = _var(
        "MEDIC_SECRETS_KEY", "",
        "key of the playbooks' step secrets (AES-256-GCM, 32 bytes, base64); `medic up` "
        "generates one into $MEDIC_DATA_DIR/secrets.key", secret=True)
    secrets_previous_keys: str = _var(
        "MEDIC_SECRETS_PREVIOUS_KEYS", "",
        "comma-separated earlier keys, still accepted for reading while secrets are "
        "re-encrypted under MEDIC_SECRETS_KEY (`medic secrets rotate`)", secret=True)
    slack_signing_secret: str = _var(
        "MEDIC_SLACK_SIGNING_SECRET", "",
        "the Slack app's signing secret; POST /v2/slack/interactions answers 503 without it",
        secret=True)
    slack_approval_channel: str = _var(
        "MEDIC_SLACK_APPROVAL_CHANNEL", "",
        "Slack channel id where approval requests (with Approve / Reject buttons) are posted; "
        "empty: MEDIC_SLACK_DEFAULT_CHANNEL")
    webhook_secret: str = _var(
        "MEDIC_WEBHOOK_SECRET", "",
        "secret outside systems send as X-Webhook-Secret to trigger playbooks; "
        "empty: the trigger route answers 503", secret=True)

    # --- retention of heartbeat events (heartbeat domain, services/heartbeat/retention.py) ---
    heartbeat_retention_days: int = _var(
        "MEDIC_HEARTBEAT_RETENTION_DAYS", 30,
        "heartbeat events older than this many days are deleted (the latest `threshold` "
        "counting heartbeats of each service are always kept)", parse=_positive_int)
    retention_interval_seconds: float = _var(
        "MEDIC_RETENTION_INTERVAL_SECONDS", 3600.0, "pause between retention passes",
        parse=_positive_float)

    # --- the `medic` management commands (medic/cli_api.py); read by the CLI only ---------
    cli_url: str = _var("MEDIC_URL", "",
                        "gateway URL the `medic` management commands call (--url wins); "
                        "empty: http://127.0.0.1:<MEDIC_GATEWAY_PORT>")
    cli_api_key: str = _var("MEDIC_API_KEY", "",
                            "API key of the `medic` management commands (--key wins); "
                            "empty: the key in $MEDIC_DATA_DIR/admin.key", secret=True)

    def target(self, service: str) -> str:
        """gRPC target of a Medic service ("auth", "heartbeat", ...)."""
        explicit = getattr(self, f"{service}_target")
        if explicit:
            return explicit
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{host}:{getattr(self, f'{service}_port')}"

    def grpc_port(self, service: str) -> int:
        return getattr(self, f"{service}_port")

    def metrics_port(self, service: str) -> int:
        return getattr(self, f"{service}_metrics_port")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 warn_unknown: bool = True) -> "Settings":
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[str] = []
        known = set()
        for f in dataclasses.fields(cls):
            env = f.metadata["env"]
            known.add(env)
            if env not in environ:
                continue
            raw = environ[env]
            parse = f.metadata["parse"]
            try:
                values[f.name] = parse(raw) if parse else raw
            except ValueError as exc:
                shown = "***" if f.metadata["secret"] else repr(raw)
                errors.append(f"{env}={shown}: {exc}")
        if errors:
            raise ConfigError("invalid configuration: " + "; ".join(errors))
        if warn_unknown:
            for name in sorted(environ):
                if (name.startswith("MEDIC_") and name not in known
                        and not name.startswith(NOT_MEDIC_SETTINGS)):
                    log.warning("unknown configuration variable %s is ignored", name)
        return cls(**values)

    def masked(self) -> dict[str, str]:
        """The effective configuration by variable name, secrets masked."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value:
                value = "***"
            elif isinstance(value, tuple):
                value = ",".join(f"{v:g}" for v in value)
            out[f.metadata["env"]] = str(value)
        return out


def variables() -> list[tuple[str, str, str]]:
    """(variable, default, doc) of every setting, for the docs."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" for v in default)
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
