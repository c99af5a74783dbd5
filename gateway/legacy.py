"""The original Medic HTTP API, translated to HeartbeatService RPCs.

Paths, fields, messages and status codes follow the original Flask API; where
it answered bad input with 200 or 500, the gateway answers the right 4xx.
"""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medic import enums
from medic.v1 import heartbeat_pb2
from gateway.http import HttpError, check_fields, iso, ok, query_flag, query_int, read_json

HB = "/medic.v1.HeartbeatService/"

# Enum fields speak the strings of medic.enums ("p1", "until_success", "down", ...).
PRIORITIES = enums.PRIORITY.numbers
PRIORITY_NAMES = enums.PRIORITY.names
NOTIFY_MODES = enums.NOTIFY_MODE.numbers
NOTIFY_MODE_NAMES = enums.NOTIFY_MODE.names
STATE_NAMES = enums.SERVICE_STATE.names
REASON_NAMES = enums.ALERT_REASON.names
JOB_SIGNALS = enums.JOB_SIGNAL.numbers

HEARTBEAT_SCHEMA = {"heartbeat_name": "string", "service_name": "string", "status": "string"}
HEARTBEAT_INVALID = ("You have provided invalid request data. Please ensure your request contains "
                     "data in both `heartbeat_name` and `status` JSON fields.")
REGISTER_SCHEMA = {
    "heartbeat_name": "string", "service_name": "string", "environment": "string",
    "alert_interval": "integer", "alert_interval_seconds": "integer", "threshold": "integer",
    "team": "string", "team_id": "integer", "priority": "string", "runbook": "string",
    "grace_period_seconds": "integer", "notify_mode": "string",
}
REGISTER_INVALID = ("You have provided invalid request data. Please ensure your request contains the "
                    "following required JSON fields - `heartbeat_name`, `service_name`, "
                    "`alert_interval` & `environment`")
UPDATE_SCHEMA = {
    "service_name": "string", "muted": "flag", "active": "flag", "alert_interval": "number",
    "alert_interval_seconds": "integer", "threshold": "integer", "team": "string", "team_id": "integer",
    "priority": "string", "runbook": "string", "down": "flag", "grace_period_seconds": "integer",
    "notify_mode": "string",
}
JOB_SIGNAL_SCHEMA = {"run_id": "string"}


def _flag(value: bool) -> int:
    return 1 if value else 0


def _minutes(seconds: int) -> int | float:
    minutes = seconds / 60
    return int(minutes) if minutes.is_integer() else round(minutes, 3)


def service_json(s: heartbeat_pb2.Service) -> dict[str, Any]:
    """A service as the original API listed it, plus Medic's newer fields."""
    return {
        "service_id": s.service_id,
        "heartbeat_name": s.heartbeat_name,
        "service_name": s.service_name,
        "active": _flag(s.active),
        "alert_interval": _minutes(s.alert_interval_seconds),
        "alert_interval_seconds": s.alert_interval_seconds,
        "threshold": s.threshold,
        "grace_period_seconds": s.grace_period_seconds,
        "team": s.team,
        "team_id": s.team_id or None,
        "priority": PRIORITY_NAMES.get(s.priority, ""),
        "notify_mode": NOTIFY_MODE_NAMES.get(s.notify_mode, ""),
        "muted": _flag(s.muted),
        "date_muted": iso(s.muted_at, s.HasField("muted_at")),
        "down": _flag(s.state == heartbeat_pb2.SERVICE_STATE_DOWN),
        "state": STATE_NAMES.get(s.state, ""),
        "runbook": s.runbook or None,
        "last_heartbeat": iso(s.last_heartbeat_at, s.HasField("last_heartbeat_at")),
        "deadline_at": iso(s.deadline_at, s.HasField("deadline_at")),
        "date_added": iso(s.created_at),
        "date_modified": iso(s.updated_at),
    }


def heartbeat_json(h: heartbeat_pb2.Heartbeat) -> dict[str, Any]:
    return {
        "heartbeat_id": h.heartbeat_id,
        "heartbeat_name": h.heartbeat_name,
        "service_name": h.service_name,
        "time": iso(h.time),
        "status": h.status,
        "run_id": h.run_id or None,
        "team": h.team,
        "priority": PRIORITY_NAMES.get(h.priority, ""),
    }


def alert_json(a: heartbeat_pb2.Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "alert_name": f"Medic - Heartbeat failure for {a.heartbeat_name}",
        "service_id": a.service_id,
        "heartbeat_name": a.heartbeat_name,
        "service_name": a.service_name,
        "active": _flag(a.active),
        "reason": REASON_NAMES.get(a.reason, ""),
        "external_reference_id": f"medic-{a.heartbeat_name}",
        "alert_cycle": a.notification_count,
        "notification_count": a.notification_count,
        "created_date": iso(a.opened_at),
        "closed_date": iso(a.closed_at, a.HasField("closed_at")),
    }


def _priority(value: str) -> int:
    priority = PRIORITIES.get(value.strip().lower())
    if priority is None:
        raise HttpError(400, "Field `priority` must be one of p1, p2, p3, p4, p5.")
    return priority


def _notify_mode(value: str) -> int:
    mode = NOTIFY_MODES.get(value.strip().lower())
    if mode is None:
        raise HttpError(400, "Field `notify_mode` must be `all` or `until_success`.")
    return mode


def _interval_seconds(data: dict[str, Any]) -> int | None:
    """``alert_interval_seconds`` wins over the legacy ``alert_interval`` (minutes)."""
    if data.get("alert_interval_seconds") is not None:
        return data["alert_interval_seconds"]
    if data.get("alert_interval") is not None:
        return round(data["alert_interval"] * 60)
    return None


def routes(gw) -> list[Route]:
    async def post_heartbeat(request: Request, decision) -> Response:
        data = await read_json(request, gw.settings.max_body_bytes)
        check_fields(data, HEARTBEAT_SCHEMA, required=("heartbeat_name", "status"),
                     message=HEARTBEAT_INVALID)
        name = data["heartbeat_name"]
        result = await gw.batcher.record(
            heartbeat_pb2.RecordHeartbeatRequest(heartbeat_name=name, status=data["status"]))
        outcome = result.outcome
        if outcome == heartbeat_pb2.RECORD_OUTCOME_ACCEPTED:
            return ok("", "Heartbeat Posted Successfully.", 201)
        if outcome == heartbeat_pb2.RECORD_OUTCOME_UNKNOWN_SERVICE:
            raise HttpError(404, f"{name} is not listed as a registered service.")
        if outcome == heartbeat_pb2.RECORD_OUTCOME_INACTIVE_SERVICE:
            raise HttpError(400, f"{name} was located, but is marked inactive. "
                                 "Does this need to be re-enabled?")
        raise HttpError(400, result.message or HEARTBEAT_INVALID)

    async def get_heartbeats(request: Request, decision) -> Response:
        max_count = query_int(request, "maxCount", minimum=1)
        response = await gw.heartbeat.ListHeartbeats(heartbeat_pb2.ListHeartbeatsRequest(
            heartbeat_name=request.query_params.get("heartbeat_name", ""),
            service_name=request.query_params.get("service_name", ""),
            max_count=min(max_count or 250, 250)), metadata=gw.md(decision), timeout=gw.rpc_timeout)
        return ok([heartbeat_json(h) for h in response.heartbeats])

    async def post_service(request: Request, decision) -> Response:
        data = await read_json(request, gw.settings.max_body_bytes)
        check_fields(data, REGISTER_SCHEMA, required=("heartbeat_name", "service_name"),
                     message=REGISTER_INVALID)
        interval = _interval_seconds(data)
        if interval is None:
            raise HttpError(400, REGISTER_INVALID)
        environment = (data.get("environment") or "").strip()
        name = f"{environment}-{data['heartbeat_name']}" if environment else data["heartbeat_name"]
        request_pb = heartbeat_pb2.RegisterServiceRequest(
            heartbeat_name=name, service_name=data["service_name"], alert_interval_seconds=interval,
            threshold=data.get("threshold") or 0, grace_period_seconds=data.get("grace_period_seconds") or 0,
            team=data.get("team") or "", team_id=data.get("team_id") or 0, runbook=data.get("runbook") or "")
        if data.get("priority") is not None:
            request_pb.priority = _priority(data["priority"])
        if data.get("notify_mode") is not None:
            request_pb.notify_mode = _notify_mode(data["notify_mode"])
        response = await gw.heartbeat.RegisterService(request_pb, metadata=gw.md(decision),
                                                      timeout=gw.rpc_timeout)
        if response.created:
            return ok([service_json(response.service)], "Heartbeat successfully registered.", 201)
        return ok([service_json(response.service)], "Heartbeat is already registered.", 200)

    async def list_services(request: Request, decision) -> Response:
        request_pb = heartbeat_pb2.ListServicesRequest(
            service_name=request.query_params.get("service_name", ""))
        active = query_flag(request, "active")
        if active is not None:
            request_pb.active = active
        response = await gw.heartbeat.ListServices(request_pb, metadata=gw.md(decision),
                                                   timeout=gw.rpc_timeout)
        return ok([service_json(s) for s in response.services])

    async def get_service(request: Request, decision) -> Response:
        name = request.path_params["heartbeat_name"]
        response = await gw.heartbeat.GetService(heartbeat_pb2.GetServiceRequest(heartbeat_name=name),
                                                 metadata=gw.md(decision), timeout=gw.rpc_timeout)
        return ok([service_json(response.service)])

    async def update_service(request: Request, decision) -> Response:
        name = request.path_params["heartbeat_name"]
        data = await read_json(request, gw.settings.max_body_bytes)
        check_fields(data, UPDATE_SCHEMA)
        request_pb = heartbeat_pb2.UpdateServiceRequest(heartbeat_name=name)
        for field in ("service_name", "team", "runbook"):
            if data.get(field) is not None:
                setattr(request_pb, field, data[field])
        for field in ("threshold", "grace_period_seconds", "team_id"):
            if data.get(field) is not None:
                setattr(request_pb, field, data[field])
        for field in ("muted", "active", "down"):
            if data.get(field) is not None:
                setattr(request_pb, field, bool(data[field]))
        interval = _interval_seconds(data)
        if interval is not None:
            request_pb.alert_interval_seconds = interval
        if data.get("priority") is not None:
            request_pb.priority = _priority(data["priority"])
        if data.get("notify_mode") is not None:
            request_pb.notify_mode = _notify_mode(data["notify_mode"])
        response = await gw.heartbeat.UpdateService(request_pb, metadata=gw.md(decision),
                                                    timeout=gw.rpc_timeout)
        return ok([service_json(response.service)], "Successfully posted update")

    async def list_alerts(request: Request, decision) -> Response:
        request_pb = heartbeat_pb2.ListAlertsRequest()
        active = query_flag(request, "active")
        if active is not None:
            request_pb.active = active
        response = await gw.heartbeat.ListAlerts(request_pb, metadata=gw.md(decision),
                                                 timeout=gw.rpc_timeout)
        return ok([alert_json(a) for a in response.alerts])

    def job_signal(signal: str):
        async def handler(request: Request, decision) -> Response:
            service_id = request.path_params["service_id"]
            data = await read_json(request, gw.settings.max_body_bytes, required=False)
            check_fields(data, JOB_SIGNAL_SCHEMA)
            response = await gw.heartbeat.RecordJobSignal(heartbeat_pb2.RecordJobSignalRequest(
                service_id=service_id, signal=JOB_SIGNALS[signal], run_id=data.get("run_id") or ""),
                metadata=gw.md(decision), timeout=gw.rpc_timeout)
            hb = response.heartbeat
            return ok({"service_id": hb.service_id, "heartbeat_name": hb.heartbeat_name,
                       "status": hb.status, "run_id": hb.run_id or None},
                      f"Job signal {hb.status} recorded successfully.", 201)
        return handler

    def route(path: str, method: str, rpc: str, handler) -> Route:
        return Route(path, gw.endpoint(path, HB + rpc, handler), methods=[method])

    return [
        route("/heartbeat", "POST", "RecordHeartbeats", post_heartbeat),
        route("/heartbeat", "GET", "ListHeartbeats", get_heartbeats),
        route("/service", "POST", "RegisterService", post_service),
        route("/service", "GET", "ListServices", list_services),
        route("/service/{heartbeat_name}", "GET", "GetService", get_service),
        route("/service/{heartbeat_name}", "POST", "UpdateService", update_service),
        route("/alerts", "GET", "ListAlerts", list_alerts),
        *[route(f"/v2/heartbeat/{{service_id:int}}/{signal}", "POST", "RecordJobSignal", job_signal(signal))
          for signal in JOB_SIGNALS],
    ]
