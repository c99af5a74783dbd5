"""The ``medic`` management commands for people: keys, services, heartbeat,
alerts, maintenance windows, teams, targets, webhooks, deliveries, playbooks, executions, secrets. Each handler builds the JSON,
calls one ``/v2`` gateway route (docs/api.md) and prints the answer: an aligned
table by default, the envelope's ``results`` as JSON with ``--json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any, Callable
from urllib.parse import quote

from medic_cli.api import (EXIT_USAGE, ApiError, Client, api_key, gateway_url, hide_secrets, record,
                           table, to_json)
from medic import enums
from medic.config import ConfigError, Settings

def configured_url() -> str:
    """The gateway URL a command without --url uses here and now (MEDIC_URL, else the
    local gateway on MEDIC_GATEWAY_PORT), for the help texts."""
    try:
        return gateway_url(None, Settings.from_env(warn_unknown=False))
    except ConfigError as exc:
        return f"unknown: {exc}"
    except ApiError as exc:
        return f"unknown: {exc.message}"


def client_help(url: str) -> str:
    return f"""\
gateway and key:
  URL:     --url (--gateway-url where --url is a target's or webhook's URL), else MEDIC_URL,
           else http://127.0.0.1:$MEDIC_GATEWAY_PORT; here and now: {url}
  API key: --key, else MEDIC_API_KEY, else the file $MEDIC_DATA_DIR/admin.key
           (default ./.medic/admin.key, written by `medic up`); the first one found wins
exit codes: 0 success, 1 the gateway refused (its message and HTTP status on stderr),
  2 bad usage or no API key, 3 the gateway cannot be reached"""

# --- columns shown per resource ----------------------------------------------------


def _every(service: dict) -> str:
    seconds = service.get("alert_interval_seconds") or 0
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _limits(key: dict) -> str:
    limits = key.get("rate_limits") or {}

    def one(name: str) -> str:
        return f"{limits[name]}/min" if limits.get(name) else "default"
    return f"heartbeat={one('heartbeat_per_minute')} management={one('management_per_minute')}"


KEY_COLUMNS = [("id", "key_id"), ("name", "name"), ("scopes", "scopes"), ("created", "created_at"),
               ("expires", "expires_at"), ("revoked", "revoked_at"), ("last used", "last_used_at"),
               ("limits", _limits)]
SERVICE_COLUMNS = [("id", "service_id"), ("name", "heartbeat_name"), ("service", "service_name"),
                   ("state", "state"), ("active", lambda s: bool(s["active"])),
                   ("muted", lambda s: bool(s["muted"])), ("every", _every), ("threshold", "threshold"),
                   ("schedule", lambda s: f"{s['schedule']} {s['timezone']}" if s.get("schedule") else None),
                   ("team", "team"), ("priority", "priority"), ("last heartbeat", "last_heartbeat")]
SERVICE_FIELDS = ["service_id", "heartbeat_name", "service_name", "state", "active", "muted", "date_muted",
                  "alert_interval_seconds", "threshold", "grace_period_seconds", "team", "team_id",
                  "priority", "notify_mode", "runbook", "schedule", "timezone", "max_duration_seconds",
                  "min_duration_seconds", "failure_tolerance", "consecutive_failures", "last_heartbeat",
                  "deadline_at", "date_added", "date_modified"]
TRANSITION_COLUMNS = [("at", "at"), ("from", "from_state"), ("to", "to_state"), ("reason", "reason"),
                      ("alert", lambda t: t.get("alert_id") or None)]
HEARTBEAT_COLUMNS = [("id", "heartbeat_id"), ("name", "heartbeat_name"), ("service", "service_name"),
                     ("time", "time"), ("status", "status"), ("run", "run_id")]
ALERT_COLUMNS = [("id", "alert_id"), ("name", "heartbeat_name"), ("service", "service_name"),
                 ("active", lambda a: bool(a["active"])), ("reason", "reason"),
                 ("notified", "notification_count"), ("opened", "created_date"), ("closed", "closed_date")]
def _duration(run: dict) -> str | None:
    ms = run.get("duration_ms")
    return None if ms is None else f"{ms / 1000:.3f}s"


RUN_COLUMNS = [("id", "job_run_id"), ("run", "run_id"), ("status", "status"), ("started", "started_at"),
               ("ended", "completed_at"), ("duration", _duration),
               ("output", lambda r: (r.get("message") or "").strip().splitlines()[-1:] and
                (r["message"] or "").strip().splitlines()[-1][:60] or None)]
STATS_FIELDS = ["service_id", "run_count", "avg_duration_ms", "p50_duration_ms", "p95_duration_ms",
                "p99_duration_ms", "min_duration_ms", "max_duration_ms", "success_rate", "ended_runs"]
TEAM_COLUMNS = [("id", "team_id"), ("name", "name"), ("slack channel", "slack_channel_id"),
                ("created", "created_at")]
TARGET_COLUMNS = [("id", "target_id"), ("service", "service_id"), ("type", "type"), ("priority", "priority"),
                  ("enabled", "enabled"), ("config", "config"),
                  ("hours", lambda t: (f"{','.join(t['active_hours']['days'])} {t['active_hours']['from']}-"
                                       f"{t['active_hours']['to']} {t['active_hours']['timezone']}")
                   if t.get("active_hours") else "always")]
WEBHOOK_COLUMNS = [("id", "webhook_id"), ("url", "url"),
                   ("service", lambda w: w.get("service_id") or "all"), ("enabled", "enabled"),
                   ("secret", "has_secret"), ("headers", "headers")]
WINDOW_COLUMNS = [("id", "window_id"), ("scope", "scope"),
                  ("covers", lambda w: w.get("service_id") or w.get("team") or w.get("name_glob") or "every service"),
                  ("when", lambda w: (f"{w['cron']} for {w['duration_seconds']}s ({w['timezone']})" if w.get("cron")
                                      else f"{w.get('starts_at')} .. {w.get('ends_at')}")),
                  ("open now", lambda w: bool(w.get("open_now"))), ("open until", "open_until"),
                  ("reason", "reason"), ("by", "created_by")]
DELIVERY_COLUMNS = [("id", "delivery_id"), ("alert", "alert_id"), ("service", "service_id"), ("kind", "kind"),
                    ("type", "type"), ("destination", "destination"), ("status", "status"),
                    ("attempts", "attempts"), ("code", lambda d: d.get("last_response_code") or None),
                    ("error", "last_error"), ("updated", "updated_at")]


# --- output ---------------------------------------------------------------------------

class Output:
    """Prints results: tables for people, JSON (results only, on stdout) for scripts."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def rows(self, results: Any, columns, message: str = "") -> None:
        results = hide_secrets(results)
        if self.as_json:
            print(to_json(results))
            return
        if message:
            print(message)
        items = results if isinstance(results, list) else [results]
        print(table(items, columns) if items else "(none)")

    def message(self, results: Any, message: str) -> None:
        print(to_json(hide_secrets(results)) if self.as_json else message)

    def once(self, what: str, value: str) -> None:
        """The one time a key or signing secret is shown (not in --json: it is in the results)."""
        if not self.as_json and value:
            print(f"\n{what} (shown only this once; store it now):\n\n    {value}\n")


def _runner(handler: Callable[[Client, argparse.Namespace, Output], None]):
    def run(args: argparse.Namespace) -> int:
        try:
            settings = Settings.from_env(warn_unknown=False)
        except ConfigError as exc:
            print(f"medic: {exc}", file=sys.stderr)
            return EXIT_USAGE
        client = None
        try:
            client = Client(gateway_url(getattr(args, "gateway_url", None), settings),
                            api_key(getattr(args, "key", None), settings))
            handler(client, args, Output(getattr(args, "json", False)))
        except ApiError as exc:
            print(f"medic: {exc}", file=sys.stderr)
            return exc.exit_code
        finally:
            if client is not None:
                client.close()
        return 0
    return run


def _usage(message: str) -> ApiError:
    return ApiError(message, exit_code=EXIT_USAGE)


def _given(**fields: Any) -> dict[str, Any]:
    """The JSON body from the options actually given."""
    return {k: v for k, v in fields.items() if v is not None}


def _priority(value: str) -> str:
    # Checked here: the legacy route reads an unknown priority as p3, as the original did.
    if value.strip().lower() not in enums.PRIORITY.choices:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(enums.PRIORITY.choices)}")
    return value.strip().lower()


def _path(name: str) -> str:
    """A name as one path segment: "/" and every other special character encoded, dots
    too (a name "." or ".." would otherwise be read as a dot segment)."""
    return quote(name, safe="").replace(".", "%2E")


# --- keys ---------------------------------------------------------------------------

def keys_create(api: Client, args, out: Output) -> None:
    limits = _given(heartbeat_per_minute=args.heartbeat_per_minute,
                    management_per_minute=args.management_per_minute)
    body = _given(name=args.name, scopes=args.scope, expires_at=args.expires_at, rate_limits=limits or None)
    message, results = api.call("POST", "/v2/api-keys", body=body)
    out.rows(results["api_key"] if not out.as_json else results, KEY_COLUMNS, message)
    out.once("API key", results.get("key", ""))


def keys_list(api: Client, args, out: Output) -> None:
    out.rows(api.call("GET", "/v2/api-keys")[1], KEY_COLUMNS)


def keys_revoke(api: Client, args, out: Output) -> None:
    message, results = api.call("DELETE", f"/v2/api-keys/{_path(args.key_id)}")
    out.rows(results, KEY_COLUMNS, message)


def keys_set_limits(api: Client, args, out: Output) -> None:
    body = _given(heartbeat_per_minute=args.heartbeat_per_minute,
                  management_per_minute=args.management_per_minute)
    if not body:
        raise _usage("give --heartbeat-per-minute and/or --management-per-minute (0 removes an override)")
    message, results = api.call("PUT", f"/v2/api-keys/{_path(args.key_id)}/rate-limits", body=body)
    out.rows(results, KEY_COLUMNS, message)


# --- services -------------------------------------------------------------------------

def _service_body(args) -> dict[str, Any]:
    return _given(service_name=args.service_name, alert_interval=args.interval_minutes,
                  alert_interval_seconds=args.interval_seconds, threshold=args.threshold,
                  grace_period_seconds=args.grace_seconds, team=args.team, team_id=args.team_id,
                  priority=args.priority, runbook=args.runbook, notify_mode=args.notify_mode,
                  schedule=args.schedule, timezone=args.timezone, max_duration_seconds=args.max_duration,
                  min_duration_seconds=args.min_duration, failure_tolerance=args.failure_tolerance)


def services_register(api: Client, args, out: Output) -> None:
    if args.interval_minutes is None and args.interval_seconds is None and not args.schedule:
        raise _usage("give --interval-minutes or --interval-seconds, or a --schedule (which then sets the "
                     "deadline, and its period the reminders' pace)")
    body = {"heartbeat_name": args.name, **_service_body(args)}
    message, results = api.call("POST", "/service", body=body)
    out.rows(results, SERVICE_COLUMNS, message)


def services_list(api: Client, args, out: Output) -> None:
    params = {"service_name": args.service_name, "active": None if args.active is None else int(args.active)}
    out.rows(api.call("GET", "/service", params=params)[1], SERVICE_COLUMNS)


def services_show(api: Client, args, out: Output) -> None:
    found = api.call("GET", f"/service/{_path(args.name)}")[1]
    if not found:  # the legacy route answers an unknown name with an empty list
        raise ApiError(f"no service is registered as {args.name!r}")
    service = found[0]
    transitions = api.call("GET", f"/v2/services/{service['service_id']}/transitions",
                           params={"limit": args.transitions})[1]
    if out.as_json:
        print(to_json({**service, "transitions": transitions}))
        return
    flags = {name: bool(service[name]) for name in ("active", "muted")}  # legacy 0/1 fields
    print(record({**service, **flags}, SERVICE_FIELDS))
    print(f"\nrecent transitions (newest first):\n{table(transitions, TRANSITION_COLUMNS)}"
          if transitions else "\nno transitions yet")


def _update_service(api: Client, name: str, body: dict[str, Any], out: Output) -> None:
    message, results = api.call("POST", f"/service/{_path(name)}", body=body)
    out.rows(results, SERVICE_COLUMNS, message)


def services_update(api: Client, args, out: Output) -> None:
    body = _service_body(args)
    if not body:
        raise _usage("nothing to change: give at least one option (see `medic services update --help`)")
    _update_service(api, args.name, body, out)


def _set_flag(field: str, value: bool):
    def handler(api: Client, args, out: Output) -> None:
        _update_service(api, args.name, {field: value}, out)
    return handler


def _service_id(api: Client, name: str) -> int:
    """The id of the service with heartbeat name ``name``; a number that names no
    service is taken as an id (a name wins over an id that looks the same)."""
    found = api.call("GET", f"/service/{_path(name)}")[1]
    if found:
        return found[0]["service_id"]
    if name.isdigit():  # the legacy route answers an unknown name with an empty list
        return int(name)
    raise ApiError(f"no service is registered as {name!r}")


def services_delete(api: Client, args, out: Output) -> None:
    message, results = api.call("DELETE", f"/v2/services/{_service_id(api, args.name)}")
    out.message(results, message)


# --- heartbeats and alerts --------------------------------------------------------------

def heartbeat_send(api: Client, args, out: Output) -> None:
    body = _given(heartbeat_name=args.name, status=args.status, run_id=args.run_id, message=args.message)
    message, results = api.call("POST", "/heartbeat", body=body)
    out.message(results, message)


def runs_list(api: Client, args, out: Output) -> None:
    params = {"limit": args.limit, "offset": args.offset}
    out.rows(api.call("GET", f"/v2/services/{_service_id(api, args.name)}/runs", params=params)[1], RUN_COLUMNS)


def runs_stats(api: Client, args, out: Output) -> None:
    stats = api.call("GET", f"/v2/services/{_service_id(api, args.name)}/stats")[1]
    if out.as_json:
        print(to_json(stats))
        return
    print(record(stats, STATS_FIELDS))
    if stats.get("avg_duration_ms") is None:
        print(f"\nno duration statistics below 5 completed runs ({stats.get('run_count', 0)} so far)")


def heartbeat_list(api: Client, args, out: Output) -> None:
    params = {"heartbeat_name": args.name, "service_name": args.service_name, "maxCount": args.max_count}
    out.rows(api.call("GET", "/heartbeat", params=params)[1], HEARTBEAT_COLUMNS)


def alerts_list(api: Client, args, out: Output) -> None:
    params = {"active": None if args.active is None else int(args.active)}
    out.rows(api.call("GET", "/alerts", params=params)[1], ALERT_COLUMNS)


def alerts_ack(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", f"/v2/alerts/{args.alert_id}/ack")
    out.rows(results, ALERT_ACK_COLUMNS, message)


ALERT_ACK_COLUMNS = [("id", "alert_id"), ("name", "heartbeat_name"), ("active", "active"),
                     ("acknowledged", "acknowledged_at"), ("by", "acknowledged_by")]


def services_mute(api: Client, args, out: Output) -> None:
    body = _given(reason=args.reason, until=args.until)
    message, results = api.call("POST", f"/v2/services/{_service_id(api, args.name)}/mute", body=body)
    out.rows(results, MUTE_COLUMNS, message)


def services_unmute(api: Client, args, out: Output) -> None:
    message, results = api.call("DELETE", f"/v2/services/{_service_id(api, args.name)}/mute")
    out.rows(results, MUTE_COLUMNS, message)


MUTE_COLUMNS = [("id", "service_id"), ("name", "heartbeat_name"), ("muted", "muted"), ("until", "muted_until"),
                ("reason", "mute_reason"), ("by", "muted_by")]


# --- maintenance windows ------------------------------------------------------------------

def _duration(raw: str) -> int:
    """Seconds from "90", "90s", "45m", "2h" or "1d"."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = raw.strip().lower()
    scale = units.get(value[-1:], None)
    number = value[:-1] if scale else value
    if not number.isdigit():
        raise argparse.ArgumentTypeError("must be seconds or a number with s, m, h or d (e.g. 2h)")
    return int(number) * (scale or 1)


def _window_body(api: Client, args) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": args.reason, "announce": args.announce}
    if args.service is not None:
        body.update(scope="service", service_id=_service_id(api, args.service))
    elif args.team is not None:
        body.update(scope="team", team=args.team)
    elif args.glob is not None:
        body.update(scope="glob", name_glob=args.glob)
    else:
        body.update(scope="all")
    if args.cron is not None:
        if args.duration is None or args.timezone is None:
            raise _usage("a recurring window needs --cron, --duration and --timezone")
        body.update(cron=args.cron, duration_seconds=args.duration, timezone=args.timezone)
    else:
        if args.starts_at is None or args.ends_at is None:
            raise _usage("give --starts-at and --ends-at (one-off), or --cron, --duration and --timezone")
        body.update(starts_at=args.starts_at, ends_at=args.ends_at)
    return body


def windows_create(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", "/v2/maintenance-windows", body=_window_body(api, args))
    out.rows(results, WINDOW_COLUMNS, message)


def windows_update(api: Client, args, out: Output) -> None:
    message, results = api.call("PUT", f"/v2/maintenance-windows/{args.window_id}", body=_window_body(api, args))
    out.rows(results, WINDOW_COLUMNS, message)


def windows_list(api: Client, args, out: Output) -> None:
    params = {"active_only": "true"} if args.active else {}
    out.rows(api.call("GET", "/v2/maintenance-windows", params=params)[1], WINDOW_COLUMNS)


def windows_show(api: Client, args, out: Output) -> None:
    out.rows(api.call("GET", f"/v2/maintenance-windows/{args.window_id}")[1], WINDOW_COLUMNS)


# --- teams, targets, webhooks, deliveries -------------------------------------------------

def teams_create(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", "/v2/teams",
                                body=_given(name=args.name, slack_channel_id=args.slack_channel_id))
    out.rows(results, TEAM_COLUMNS, message)


def teams_list(api: Client, args, out: Output) -> None:
    out.rows(api.call("GET", "/v2/teams")[1], TEAM_COLUMNS)


def teams_update(api: Client, args, out: Output) -> None:
    body = _given(name=args.name, slack_channel_id=args.slack_channel_id)
    if not body:
        raise _usage("nothing to change: give --name and/or --slack-channel-id (\"\" removes the channel)")
    message, results = api.call("PATCH", f"/v2/teams/{args.team_id}", body=body)
    out.rows(results, TEAM_COLUMNS, message)


def _delete(path: str):
    def handler(api: Client, args, out: Output) -> None:
        message, results = api.call("DELETE", path.format(**vars(args)))
        out.message(results, message)
    return handler


TYPE_OF_OPTION = {"channel_id": "slack", "routing_key": "pagerduty", "url": "webhook"}


def _target_config(args) -> tuple[str | None, dict[str, Any] | None]:
    """(type, config) from --type and the per-type options or --config."""
    given = [name for name in TYPE_OF_OPTION if getattr(args, name) is not None]
    if len(given) + (args.config is not None) > 1:
        raise _usage("give one of --channel-id, --routing-key, --url or --config")
    if args.headers and given != ["url"]:
        raise _usage("--header goes with --url (a webhook target)")
    if args.config is not None:
        return args.type, args.config
    if not given:
        return args.type, None
    config = {given[0]: getattr(args, given[0])}
    if args.headers:
        config["headers"] = args.headers
    return args.type or TYPE_OF_OPTION[given[0]], config


def targets_create(api: Client, args, out: Output) -> None:
    target_type, config = _target_config(args)
    if target_type is None or config is None:
        raise _usage("give --channel-id (slack), --routing-key (pagerduty), --url (webhook), "
                     "or --type with --config JSON")
    body = _given(service_id=args.service_id, type=target_type, config=config, priority=args.priority,
                  enabled=args.enabled, active_hours=_active_hours(args))
    message, results = api.call("POST", "/v2/notification-targets", body=body)
    out.rows(results, TARGET_COLUMNS, message)


def _active_hours(args) -> dict[str, Any] | None:
    """--days/--from/--to/--timezone as the target's working hours (all or none)."""
    given = [args.days, args.hours_from, args.hours_to, args.timezone]
    if not any(given):
        return None
    if not all(given):
        raise _usage("working hours need --days, --from, --to and --timezone together")
    return {"days": [d.strip() for d in args.days.split(",") if d.strip()], "from": args.hours_from,
            "to": args.hours_to, "timezone": args.timezone}


def targets_list(api: Client, args, out: Output) -> None:
    results = api.call("GET", "/v2/notification-targets", params={"service_id": args.service_id})[1]
    out.rows(results, TARGET_COLUMNS)


def targets_update(api: Client, args, out: Output) -> None:
    target_type, config = _target_config(args)
    body = _given(type=target_type, config=config, priority=args.priority, enabled=args.enabled,
                  active_hours=_active_hours(args), clear_active_hours=True if args.always else None)
    if not body:
        raise _usage("nothing to change: see `medic targets update --help`")
    message, results = api.call("PATCH", f"/v2/notification-targets/{args.target_id}", body=body)
    out.rows(results, TARGET_COLUMNS, message)


def webhooks_create(api: Client, args, out: Output) -> None:
    body = _given(url=args.url, service_id=args.service_id, headers=args.headers or None, secret=args.secret,
                  enabled=args.enabled)
    message, results = api.call("POST", "/v2/webhooks", body=body)
    out.rows(results["webhook"] if not out.as_json else results, WEBHOOK_COLUMNS, message)
    if not args.secret:  # a secret the user chose is not echoed back
        out.once("Signing secret", results.get("secret", ""))


def webhooks_list(api: Client, args, out: Output) -> None:
    out.rows(api.call("GET", "/v2/webhooks", params={"service_id": args.service_id})[1], WEBHOOK_COLUMNS)


def webhooks_update(api: Client, args, out: Output) -> None:
    headers = {} if args.no_headers else (args.headers or None)
    body = _given(url=args.url, service_id=0 if args.global_ else args.service_id, headers=headers,
                  secret="" if args.no_secret else args.secret, enabled=args.enabled)
    if not body:
        raise _usage("nothing to change: see `medic webhooks update --help`")
    message, results = api.call("PATCH", f"/v2/webhooks/{args.webhook_id}", body=body)
    out.rows(results, WEBHOOK_COLUMNS, message)


def deliveries_list(api: Client, args, out: Output) -> None:
    params = {"alert_id": args.alert_id, "service_id": args.service_id, "target_id": args.target_id,
              "webhook_id": args.webhook_id, "status": args.status, "limit": args.limit}
    out.rows(api.call("GET", "/v2/deliveries", params=params)[1], DELIVERY_COLUMNS)


def deliveries_retry(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", f"/v2/deliveries/{args.delivery_id}/retry")
    out.rows(results, DELIVERY_COLUMNS, message)


# --- playbooks, executions, secrets (remediation) ---------------------------------------------

PLAYBOOK_COLUMNS = [("id", "playbook_id"), ("name", "name"), ("approval", "approval"),
                    ("pattern", "service_pattern"), ("failures", "consecutive_failures"), ("steps", "step_count"),
                    ("version", "version"), ("updated", "updated_at")]
EXECUTION_COLUMNS = [("id", "execution_id"), ("playbook", "playbook_name"), ("service", "service_id"),
                     ("alert", lambda e: e.get("alert_id") or None), ("trigger", "trigger"), ("status", "status"),
                     ("step", "current_step"), ("created", "created_at"), ("ended", "completed_at")]
STEP_COLUMNS = [("#", "step_index"), ("name", "name"), ("type", "type"), ("status", "status"),
                ("started", "started_at"), ("ended", "completed_at"), ("error", "error")]
SECRET_COLUMNS = [("name", "name"), ("created", "created_at"), ("updated", "updated_at")]


def _document(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise _usage(f"cannot read {path}: {exc.strerror}") from None


def playbooks_apply(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", "/v2/playbooks/apply", body={"yaml": _document(args.file)})
    verb = "created" if results.get("created") else "updated"
    out.rows(results["playbook"] if not out.as_json else results, PLAYBOOK_COLUMNS,
             f"Playbook {results['playbook']['name']!r} {verb} (id {results['playbook_id']}).")


def playbooks_validate(api: Client, args, out: Output) -> None:
    results = api.call("POST", "/v2/playbooks/validate", body={"yaml": _document(args.file)})[1]
    if out.as_json:
        out.message(results, "")
    elif results["valid"]:
        print(f"{args.file}: valid")
    else:
        for error in results["errors"]:
            where = f"line {error['line']}" if error["line"] else "document"
            print(f"{args.file}: {where}, {error['field'] or '-'}: {error['message']}")
    if not results["valid"]:
        raise ApiError("the playbook is not valid", exit_code=1)


def playbooks_list(api: Client, args, out: Output) -> None:
    out.rows(api.call("GET", "/v2/playbooks")[1], PLAYBOOK_COLUMNS)


def playbooks_show(api: Client, args, out: Output) -> None:
    results = api.call("GET", f"/v2/playbooks/{args.playbook_id}")[1]
    if out.as_json:
        out.message(results, "")
    else:
        print(results["yaml"], end="" if results["yaml"].endswith("\n") else "\n")


def playbooks_execute(api: Client, args, out: Output) -> None:
    body = _given(service_id=args.service_id, variables=dict(args.variables) if args.variables else None)
    message, results = api.call("POST", f"/v2/playbooks/{args.playbook_id}/execute", body=body)
    out.rows(results, EXECUTION_COLUMNS[:6], results.get("message") or message)


def executions_list(api: Client, args, out: Output) -> None:
    params = {"playbook_id": args.playbook_id, "service_id": args.service_id, "status": args.status,
              "limit": args.limit}
    out.rows(api.call("GET", "/v2/executions", params=params)[1], EXECUTION_COLUMNS)


def executions_show(api: Client, args, out: Output) -> None:
    results = api.call("GET", f"/v2/executions/{args.execution_id}")[1]
    if out.as_json:
        out.message(results, "")
        return
    out.rows(results, EXECUTION_COLUMNS)
    print()
    print(table(results["steps"], STEP_COLUMNS) if results["steps"] else "(no step)")


def _decide(action: str):
    def handler(api: Client, args, out: Output) -> None:
        message, results = api.call("POST", f"/v2/executions/{args.execution_id}/{action}")
        out.rows(results, EXECUTION_COLUMNS, message)
    return handler


def secrets_put(api: Client, args, out: Output) -> None:
    value = sys.stdin.readline().rstrip("\n") if args.value == "-" else args.value
    message, results = api.call("PUT", f"/v2/secrets/{_path(args.name)}", body={"value": value})
    out.rows(results, SECRET_COLUMNS, message)


def secrets_list(api: Client, args, out: Output) -> None:
    out.rows(api.call("GET", "/v2/secrets")[1], SECRET_COLUMNS)


def _variable(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def _register_remediation(commands) -> None:
    playbooks = _group(commands, "playbooks", "remediation playbooks (docs/remediation.md)")
    p = _leaf(playbooks, "apply", playbooks_apply,
              "create the playbook of a YAML file, or update the playbook of that name (admin)")
    p.add_argument("file", metavar="FILE.yaml")
    p = _leaf(playbooks, "validate", playbooks_validate, "check a playbook file without saving it")
    p.add_argument("file", metavar="FILE.yaml")
    _leaf(playbooks, "list", playbooks_list, "list playbooks")
    p = _leaf(playbooks, "show", playbooks_show, "print a playbook's YAML")
    p.add_argument("playbook_id", type=int, metavar="PLAYBOOK_ID")
    p = _leaf(playbooks, "execute", playbooks_execute, "run a playbook by hand (10 a minute per key)")
    p.add_argument("playbook_id", type=int, metavar="PLAYBOOK_ID")
    p.add_argument("--service-id", type=int, metavar="N", help="the service it is about")
    p.add_argument("--var", dest="variables", type=_variable, action="append", metavar="NAME=VALUE",
                   help="a ${NAME} variable; repeatable")
    p = _leaf(playbooks, "delete", _delete("/v2/playbooks/{playbook_id}"), "delete a playbook (admin)")
    p.add_argument("playbook_id", type=int, metavar="PLAYBOOK_ID")

    executions = _group(commands, "executions", "playbook executions")
    p = _leaf(executions, "list", executions_list, "executions, newest first")
    p.add_argument("--playbook-id", type=int, metavar="N")
    p.add_argument("--service-id", type=int, metavar="N")
    p.add_argument("--status", help="pending_approval, running, waiting, completed, failed, cancelled or rejected")
    p.add_argument("--limit", type=int, metavar="N")
    p = _leaf(executions, "show", executions_show, "an execution, step by step")
    p.add_argument("execution_id", type=int, metavar="EXECUTION_ID")
    for action, text in (("approve", "approve an execution waiting for approval"),
                         ("reject", "reject an execution waiting for approval"),
                         ("cancel", "cancel an execution that has not ended")):
        p = _leaf(executions, action, _decide(action), text)
        p.add_argument("execution_id", type=int, metavar="EXECUTION_ID")

    secrets = _group(commands, "secrets", "step secrets, stored encrypted (admin)")
    p = _leaf(secrets, "put", secrets_put, "store a secret a playbook names as ${secrets.NAME}")
    p.add_argument("name", metavar="NAME")
    p.add_argument("value", metavar="VALUE", help="'-' reads it from standard input (keeps it out of "
                                                   "your shell history)")
    _leaf(secrets, "list", secrets_list, "list secrets (names only)")
    p = _leaf(secrets, "delete", _delete("/v2/secrets/{name}"), "delete a secret")
    p.add_argument("name", metavar="NAME")
    from medic_cli import ops  # `medic secrets rotate` works on the database, not through the gateway

    ops.register_rotate(secrets)


# --- argparse wiring ------------------------------------------------------------------------

def _secret(raw: str) -> str:
    """A secret option's value: ``-`` reads it from standard input (all of it),
    ``@PATH`` from a file, so that it stays off the command line (which other
    users of the machine can see in ``ps``); ``@@...`` is a value that starts with
    ``@``; anything else is the secret itself. A trailing newline is dropped."""
    if raw == "-":
        value = sys.stdin.read()
        if not value:
            raise argparse.ArgumentTypeError("'-' reads the value from standard input, which is empty")
    elif raw.startswith("@@"):
        return raw[1:]
    elif raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as file:
                value = file.read()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {raw[1:]!r}: {exc.strerror}") from None
    else:
        return raw
    return value.rstrip("\r\n")


SECRET_HELP = "; - reads it from standard input, @FILE from a file (keeps it out of `ps`; @@ for a leading @)"


def _header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {raw!r}")
    return name.strip(), _secret(value)


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


class _Headers(argparse.Action):
    """Repeatable --header NAME=VALUE collected into a dict."""

    def __call__(self, parser, namespace, values, option_string=None):
        headers = dict(getattr(namespace, self.dest) or {})
        headers[values[0]] = values[1]
        setattr(namespace, self.dest, headers)


def add_client_options(parser: argparse.ArgumentParser, url: str, *, url_option: bool = True) -> None:
    """--url/--key/--json, accepted before or after the command (SUPPRESS keeps a
    value given before the command from being reset by the subcommand's default).
    Where --url is a target's or webhook's own URL, the gateway's is --gateway-url
    (or --url before the command)."""
    group = parser.add_argument_group("management commands")
    group.add_argument(*(("--url", "--gateway-url") if url_option else ("--gateway-url",)),
                       dest="gateway_url", default=argparse.SUPPRESS, metavar="URL",
                       help=f"gateway URL (wins over MEDIC_URL; now: {url})")
    group.add_argument("--key", default=argparse.SUPPRESS, type=_secret,
                       help="API key (wins over MEDIC_API_KEY, which wins over $MEDIC_DATA_DIR/admin.key; "
                            "prefer the variable, or - / @FILE: command lines are visible to other users)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print the results as JSON (for scripts) instead of a table")


def _group(commands, name: str, help: str):
    parser = commands.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def _leaf(commands, name: str, handler, help: str, *, url_option: bool = True) -> argparse.ArgumentParser:
    url = configured_url()
    parser = commands.add_parser(name, help=help, description=help, epilog=client_help(url),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_client_options(parser, url, url_option=url_option)
    parser.set_defaults(func=_runner(handler))
    return parser


def _enabled_options(parser, *, only_disable: bool = False) -> None:
    if only_disable:
        parser.add_argument("--disabled", dest="enabled", action="store_false", default=None,
                            help="create it disabled")
        return
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--enabled", dest="enabled", action="store_true", default=None)
    group.add_argument("--disabled", dest="enabled", action="store_false")


def _active_filter(parser, on: str, off: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(f"--{on}", dest="active", action="store_true", default=None, help=f"only {on} ones")
    group.add_argument(f"--{off}", dest="active", action="store_false", help=f"only {off} ones")


def _register_keys(commands) -> None:
    keys = _group(commands, "keys", "API keys (admin)")
    p = _leaf(keys, "create", keys_create, "create an API key; its plaintext is printed once")
    p.add_argument("--name", required=True)
    p.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                   help="read, write or admin; repeat for several")
    p.add_argument("--expires-at", metavar="ISO", help="RFC 3339 time, e.g. 2027-01-31T00:00:00Z")
    _limit_options(p)
    _leaf(keys, "list", keys_list, "list API keys (never the keys themselves)")
    p = _leaf(keys, "revoke", keys_revoke, "revoke an API key")
    p.add_argument("key_id", metavar="KEY_ID")
    p = _leaf(keys, "set-limits", keys_set_limits, "set a key's rate-limit overrides (0 removes one)")
    p.add_argument("key_id", metavar="KEY_ID")
    _limit_options(p)


def _limit_options(parser) -> None:
    parser.add_argument("--heartbeat-per-minute", type=int, metavar="N")
    parser.add_argument("--management-per-minute", type=int, metavar="N")


def _service_options(parser, *, register: bool) -> None:
    parser.add_argument("--service-name", required=register, help="the service the heartbeat belongs to")
    interval = parser.add_mutually_exclusive_group()
    interval.add_argument("--interval-minutes", type=int, metavar="M",
                          help="expected heartbeat interval (to register: this, --interval-seconds or --schedule)")
    interval.add_argument("--interval-seconds", type=int, metavar="S", help="... in seconds (sub-minute checks)")
    parser.add_argument("--threshold", type=int, metavar="N", help="missed heartbeats before an alert")
    parser.add_argument("--grace-seconds", type=int, metavar="N", help="extra time before a heartbeat is late")
    team = parser.add_mutually_exclusive_group()
    team.add_argument("--team", metavar="T", help="team name")
    team.add_argument("--team-id", type=int, metavar="N")
    parser.add_argument("--priority", type=_priority, metavar="P", help="p1 (highest) .. p5")
    parser.add_argument("--runbook", metavar="URL")
    parser.add_argument("--notify-mode", metavar="MODE",
                        help="all (every target) or until_success (in priority order until one succeeds)")
    parser.add_argument("--schedule", metavar="CRON",
                        help="a 5-field cron expression the job runs on, e.g. '30 9 * * 1-5' (\"\" removes it)")
    parser.add_argument("--timezone", metavar="TZ", help="IANA time zone of the schedule (default UTC)")
    parser.add_argument("--max-duration", type=int, metavar="S",
                        help="a run open longer alerts run_too_long (0 removes the limit)")
    parser.add_argument("--min-duration", type=int, metavar="S",
                        help="a run completed faster alerts run_too_fast (0 removes the limit)")
    parser.add_argument("--failure-tolerance", type=int, metavar="N",
                        help="failures in a row that open no alert (the next one does)")


def _register_services(commands) -> None:
    services = _group(commands, "services", "services monitored by heartbeats")
    p = _leaf(services, "register", services_register, "register a heartbeat (idempotent)")
    p.add_argument("name", metavar="NAME", help="heartbeat name")
    _service_options(p, register=True)
    p = _leaf(services, "list", services_list, "list services")
    p.add_argument("--service-name", help="only this service's heartbeats")
    _active_filter(p, "active", "inactive")
    p = _leaf(services, "show", services_show, "one service and its recent state changes")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--transitions", type=int, default=10, metavar="N", help="how many (default 10)")
    p = _leaf(services, "update", services_update, "change a service's settings")
    p.add_argument("name", metavar="NAME")
    _service_options(p, register=False)
    p = _leaf(services, "mute", services_mute,
              "stop notifications (alerts still open); without --until the mute ends when the service recovers")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--reason", help="why (shown with the service)")
    p.add_argument("--until", metavar="ISO", help="when the mute ends, RFC 3339 (e.g. 2027-01-31T08:00:00Z)")
    p = _leaf(services, "unmute", services_unmute, "notify again")
    p.add_argument("name", metavar="NAME")
    for name, field, value, help in (("activate", "active", True, "monitor it again"),
                                     ("deactivate", "active", False, "stop monitoring it")):
        _leaf(services, name, _set_flag(field, value), help).add_argument("name", metavar="NAME")
    p = _leaf(services, "delete", services_delete, "delete a service with its heartbeats, alerts and targets")
    p.add_argument("name", metavar="NAME", help="heartbeat name (or the service id)")


def _register_heartbeats_and_alerts(commands) -> None:
    heartbeat = _group(commands, "heartbeat", "send and list heartbeats")
    p = _leaf(heartbeat, "send", heartbeat_send, "send a heartbeat")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--status", default="UP",
                   help="UP (default); FAILED or DOWN report a failure; STARTED/COMPLETED start and end a run")
    p.add_argument("--run-id", metavar="ID", help="the job run it starts or ends")
    p.add_argument("--message", metavar="TEXT", help="the run's output (at most 10 KiB)")
    p = _leaf(heartbeat, "list", heartbeat_list, "recent heartbeats, newest first")
    p.add_argument("--name")
    p.add_argument("--service-name")
    p.add_argument("--max-count", type=int, metavar="N", help="at most N (default and maximum 250)")
    runs = _group(commands, "runs", "a job's runs and their duration statistics")
    p = _leaf(runs, "list", runs_list, "a service's runs, newest first")
    p.add_argument("name", metavar="NAME", help="heartbeat name (or the service id)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N (default 50, at most 1,000)")
    p.add_argument("--offset", type=int, metavar="N", help="pass over the N newest first")
    p = _leaf(runs, "stats", runs_stats,
              "avg/p50/p95/p99/min/max duration of the last 100 completed runs, and the success rate")
    p.add_argument("name", metavar="NAME", help="heartbeat name (or the service id)")
    p = _leaf(commands, "alerts", alerts_list, "alerts, newest first (latest 100 without a filter)")
    _active_filter(p, "active", "closed")
    p = _leaf(commands, "ack", alerts_ack,
              "acknowledge an open alert: no more reminders; PagerDuty hears of it; the resolve still goes out")
    p.add_argument("alert_id", type=int, metavar="ALERT_ID")


def _window_options(p) -> None:
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--service", metavar="NAME", help="one service (heartbeat name or id)")
    scope.add_argument("--team", metavar="T", help="the services of a team")
    scope.add_argument("--glob", metavar="PATTERN", help="services whose heartbeat name matches, e.g. 'db-*'")
    scope.add_argument("--all", action="store_true", help="every service (the default)")
    p.add_argument("--starts-at", metavar="ISO", help="one-off: start, RFC 3339")
    p.add_argument("--ends-at", metavar="ISO", help="one-off: end, RFC 3339")
    p.add_argument("--cron", metavar="EXPR", help="recurring: five cron fields, e.g. '0 2 * * sun'")
    p.add_argument("--duration", type=_duration, metavar="D", help="recurring: length of each, e.g. 2h")
    p.add_argument("--timezone", metavar="TZ", help="recurring: IANA time zone, e.g. Europe/Berlin")
    p.add_argument("--reason", required=True)
    p.add_argument("--announce", action="store_true",
                   help="tell each service's targets when the window starts and ends (never PagerDuty)")


def _register_windows(commands) -> None:
    windows = _group(commands, "windows", "maintenance windows: planned quiet for services")
    p = _leaf(windows, "create", windows_create, "create a maintenance window (one-off or recurring)")
    _window_options(p)
    p = _leaf(windows, "update", windows_update,
              "replace a maintenance window's definition (give it whole, as to create)")
    p.add_argument("window_id", type=int, metavar="ID")
    _window_options(p)
    p = _leaf(windows, "list", windows_list, "list maintenance windows")
    p.add_argument("--active", action="store_true", help="only those open now")
    p = _leaf(windows, "show", windows_show, "one maintenance window")
    p.add_argument("window_id", type=int, metavar="ID")
    p = _leaf(windows, "delete", _delete("/v2/maintenance-windows/{window_id}"),
              "delete a maintenance window (alerts it held back are notified now if still open)")
    p.add_argument("window_id", type=int, metavar="ID")


def _register_routing(commands) -> None:
    teams = _group(commands, "teams", "teams (admin)")
    p = _leaf(teams, "create", teams_create, "create a team")
    p.add_argument("--name", required=True)
    p.add_argument("--slack-channel-id", metavar="C")
    _leaf(teams, "list", teams_list, "list teams")
    p = _leaf(teams, "update", teams_update, "rename a team or change its Slack channel")
    p.add_argument("team_id", type=int, metavar="TEAM_ID")
    p.add_argument("--name")
    p.add_argument("--slack-channel-id", metavar="C", help='"" removes the channel')
    p = _leaf(teams, "delete", _delete("/v2/teams/{team_id}"), "delete a team (its services stay)")
    p.add_argument("team_id", type=int, metavar="TEAM_ID")

    targets = _group(commands, "targets", "a service's notification targets (admin)")
    p = _leaf(targets, "create", targets_create, "add a notification target to a service", url_option=False)
    p.add_argument("--service-id", type=int, required=True, metavar="N")
    _target_options(p)
    _enabled_options(p, only_disable=True)
    p = _leaf(targets, "list", targets_list, "list notification targets")
    p.add_argument("--service-id", type=int, metavar="N")
    p = _leaf(targets, "update", targets_update, "change a notification target", url_option=False)
    p.add_argument("target_id", type=int, metavar="TARGET_ID")
    _target_options(p)
    p.add_argument("--always", action="store_true", help="remove the working hours: always active")
    _enabled_options(p)
    p = _leaf(targets, "delete", _delete("/v2/notification-targets/{target_id}"), "delete a notification target")
    p.add_argument("target_id", type=int, metavar="TARGET_ID")


def _target_options(parser) -> None:
    parser.add_argument("--type", metavar="TYPE", help="slack, pagerduty or webhook (implied by the options below)")
    parser.add_argument("--channel-id", dest="channel_id", metavar="C", help="slack channel id")
    parser.add_argument("--routing-key", dest="routing_key", metavar="K", type=_secret,
                        help="PagerDuty Events v2 routing key" + SECRET_HELP)
    parser.add_argument("--url", dest="url", metavar="URL", help="webhook URL")
    parser.add_argument("--header", dest="headers", type=_header, action=_Headers, metavar="NAME=VALUE",
                        help="webhook header, repeatable (VALUE may be - or @FILE; @@ for a leading @)")
    parser.add_argument("--config", type=lambda raw: _json_object(_secret(raw)), metavar="JSON",
                        help="the whole config as a JSON object (or - / @FILE holding it)")
    parser.add_argument("--priority", type=int, metavar="N", help="lower is tried first (default 0)")
    hours = parser.add_argument_group("working hours (outside them the target gets no triggers or reminders)")
    hours.add_argument("--days", metavar="DAYS", help="e.g. mon,tue,wed,thu,fri")
    hours.add_argument("--from", dest="hours_from", metavar="HH:MM", help="start, e.g. 09:00")
    hours.add_argument("--to", dest="hours_to", metavar="HH:MM", help="end, e.g. 17:00 (before --from: overnight)")
    hours.add_argument("--timezone", metavar="TZ", help="IANA time zone, e.g. Europe/Berlin")


def _register_delivery(commands) -> None:
    webhooks = _group(commands, "webhooks", "webhook subscriptions to alerts (admin)")
    p = _leaf(webhooks, "create", webhooks_create,
              "subscribe a URL to one service's alerts (--service-id) or to all; the signing secret is "
              "printed once", url_option=False)
    p.add_argument("--url", dest="url", required=True, metavar="URL", help="where alerts are POSTed")
    p.add_argument("--service-id", type=int, metavar="N", help="omit for a global subscription")
    p.add_argument("--header", dest="headers", type=_header, action=_Headers, metavar="NAME=VALUE")
    p.add_argument("--secret", type=_secret, help="signing secret (default: generated and printed once)" + SECRET_HELP)
    _enabled_options(p, only_disable=True)
    p = _leaf(webhooks, "list", webhooks_list, "list webhook subscriptions (never secrets)")
    p.add_argument("--service-id", type=int, metavar="N")
    p = _leaf(webhooks, "update", webhooks_update, "change a webhook subscription", url_option=False)
    p.add_argument("webhook_id", type=int, metavar="WEBHOOK_ID")
    p.add_argument("--url", dest="url", metavar="URL")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--service-id", type=int, metavar="N")
    scope.add_argument("--global", dest="global_", action="store_true", help="subscribe to every service")
    headers = p.add_mutually_exclusive_group()
    headers.add_argument("--header", dest="headers", type=_header, action=_Headers, metavar="NAME=VALUE",
                         help="replaces all headers; repeatable")
    headers.add_argument("--no-headers", action="store_true", help="remove all headers")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--secret", type=_secret, help="new signing secret" + SECRET_HELP)
    secret.add_argument("--no-secret", action="store_true", help="remove the signing secret: send unsigned")
    _enabled_options(p)
    p = _leaf(webhooks, "delete", _delete("/v2/webhooks/{webhook_id}"), "delete a webhook subscription")
    p.add_argument("webhook_id", type=int, metavar="WEBHOOK_ID")

    deliveries = _group(commands, "deliveries", "the delivery log")
    p = _leaf(deliveries, "list", deliveries_list, "deliveries, newest first")
    for option in ("alert-id", "service-id", "target-id", "webhook-id"):
        p.add_argument(f"--{option}", type=int, metavar="N")
    p.add_argument("--status", help="pending, retrying, success, failed or skipped")
    p.add_argument("--limit", type=int, metavar="N")
    p = _leaf(deliveries, "retry", deliveries_retry, "try a failed or skipped delivery again (admin)")
    p.add_argument("delivery_id", type=int, metavar="ID")


# --- change history -------------------------------------------------------------------

def _change(row: dict[str, Any]) -> str:
    """What an event changed, briefly: the settings whose value differs."""
    before, after = row.get("before") or {}, row.get("after") or {}
    if not before:
        return "created"
    if not after:
        return "deleted"
    changed = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
               if before.get(k) != after.get(k)]
    return "; ".join(changed) or "(no setting changed)"


AUDIT_COLUMNS = [("at", "timestamp"), ("who", "actor"), ("key", "key_id"), ("action", "action_type"),
                 ("resource", "resource"), ("id", "resource_id"), ("change", _change)]
SNAPSHOT_COLUMNS = [("id", "snapshot_id"), ("service", "service_id"), ("name", "heartbeat_name"),
                    ("before", "action_type"), ("who", "actor"), ("at", "created_at"),
                    ("restored", "restored_at"), ("bulk", "bulk_id")]

_SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _since(value: str) -> str:
    """``1h``, ``30m``, ``2d``... (or an ISO time) as the ISO time it names."""
    value = value.strip()
    unit = _SINCE_UNITS.get(value[-1:].lower())
    if unit is not None and value[:-1].isdigit():
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=int(value[:-1]) * unit)
        return start.isoformat().replace("+00:00", "Z")
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("a duration such as 30m, 1h, 7d, or an ISO time") from None
    return value


def audit_list(api: Client, args, out: Output) -> None:
    params = {"heartbeat_name": args.service, "start_date": args.since, "action_type": args.action,
              "actor": args.actor, "resource": args.resource, "resource_id": args.resource_id,
              "limit": args.limit, "offset": args.offset}
    results = api.call("GET", "/v2/audit-logs", params=params)[1]
    entries = results["entries"] if isinstance(results, dict) else results
    if out.as_json:
        out.rows(results, AUDIT_COLUMNS)
        return
    out.rows(entries, AUDIT_COLUMNS)
    if isinstance(results, dict) and results.get("has_more"):
        print(f"({results['total_count']} in all; --offset {results['offset'] + len(entries)} for more)")


def snapshots_list(api: Client, args, out: Output) -> None:
    service_id = _service_id(api, args.service) if args.service else None
    params = {"service_id": service_id, "bulk_id": args.bulk_id, "limit": args.limit}
    results = api.call("GET", "/v2/snapshots", params=params)[1]
    out.rows(results if out.as_json else results["entries"], SNAPSHOT_COLUMNS)


def snapshots_restore(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", f"/v2/snapshots/{args.snapshot_id}/restore")
    out.message(results, message)


def bulk_undo(api: Client, args, out: Output) -> None:
    message, results = api.call("POST", f"/v2/bulk-changes/{_path(args.bulk_id)}/undo")
    out.message(results, message if out.as_json else f"{message} {results['restored']} service(s) restored; "
                                                    f"undo this with bulk id {results['bulk_id']}.")


def _register_history(commands) -> None:
    p = _leaf(commands, "audit", audit_list, "the change history (audit log), newest first")
    p.add_argument("--service", metavar="NAME", help="one service's history (its heartbeat name)")
    p.add_argument("--since", type=_since, metavar="WHEN", help="e.g. 30m, 1h, 7d, or an ISO time")
    p.add_argument("--action", metavar="TYPE", help="an action type, e.g. mute, deactivate, delete")
    p.add_argument("--actor", metavar="WHO", help="an X-Actor, an API key's name or its id")
    p.add_argument("--resource", metavar="KIND", help="service, team, notification_target, webhook, api_key, ...")
    p.add_argument("--resource-id", metavar="ID")
    p.add_argument("--limit", type=int, metavar="N", help="1-250 (default 50)")
    p.add_argument("--offset", type=int, metavar="N")

    snaps = _group(commands, "snapshots", "services as they were before each destructive change (undo)")
    p = _leaf(snaps, "list", snapshots_list, "snapshots, newest first")
    p.add_argument("--service", metavar="NAME", help="one service's snapshots (its heartbeat name)")
    p.add_argument("--bulk-id", metavar="UUID", help="the snapshots of one bulk change")
    p.add_argument("--limit", type=int, metavar="N")
    p = _leaf(snaps, "restore", snapshots_restore,
              "put a service back as it was in a snapshot (itself audited and snapshotted: undo-able)")
    p.add_argument("snapshot_id", type=int, metavar="ID")
    p = _leaf(snaps, "undo-bulk", bulk_undo, "put back every service of a bulk change")
    p.add_argument("bulk_id", metavar="BULK_ID")


def register(parser: argparse.ArgumentParser, commands) -> None:
    """Adds the management commands to `medic` (``commands`` = its subparsers)."""
    add_client_options(parser, configured_url())
    _register_keys(commands)
    _register_services(commands)
    _register_heartbeats_and_alerts(commands)
    _register_windows(commands)
    _register_routing(commands)
    _register_delivery(commands)
    _register_history(commands)
    _register_remediation(commands)
