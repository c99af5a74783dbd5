"""The original Medic HTTP API, translated to HeartbeatService RPCs.

Paths, fields, messages and status codes follow the original Flask API,
including where it was lenient (``gateway.legacy_input`` says how values
Medic cannot hold are read); where it answered bad input with 500, the
gateway answers the right 4xx.
"""
from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medic import enums
from medic.references import alert_reference
from medic.v1 import heartbeat_pb2
from gateway import legacy_input as lenient
from gateway import protojson
from gateway.http import HttpError, envelope, iso, link_next_page, ok, query_int, read_body, read_json

HB = "/medic.v1.HeartbeatService/"

# Enum fields speak the strings of medic.enums ("p1", "until_success", "down", ...);
# the notify modes a request may name, also listed in the OpenAPI document.
NOTIFY_MODES = enums.NOTIFY_MODE.numbers

HEARTBEAT_SCHEMA = {"heartbeat_name": "string", "service_name": "string", "status": "string",
                    "run_id": "string", "message": "string"}
# A run's output: at most 10 KiB of UTF-8 (the heartbeat service's limit, status.MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES = 10 * 1024
HEARTBEAT_INVALID = ("You have provided invalid request data. Please ensure your request contains "
                     "data in both `heartbeat_name` and `status` JSON fields.")
REGISTER_SCHEMA = {
    "heartbeat_name": "string", "service_name": "string", "environment": "string",
    "alert_interval": "integer", "alert_interval_seconds": "integer", "threshold": "integer",
    "team": "string", "team_id": "integer", "priority": "string", "runbook": "string",
    "grace_period_seconds": "integer", "notify_mode": "string", **lenient.JOB_FIELDS,
}
REGISTER_INVALID = ("You have provided invalid request data. Please ensure your request contains the "
                    "following required JSON fields - `heartbeat_name`, `service_name`, "
                    "`alert_interval` & `environment`")
UPDATE_INVALID = ("You have provided invalid request data. Please ensure your request contains data "
                  "in the correct JSON fields.")
UPDATE_SCHEMA = {
    "service_name": "string", "muted": "flag", "active": "flag", "alert_interval": "number",
    "alert_interval_seconds": "integer", "threshold": "integer", "team": "string", "team_id": "integer",
    "priority": "string", "runbook": "string", "down": "flag", "grace_period_seconds": "integer",
    "notify_mode": "string", **lenient.JOB_FIELDS,
}


def _flag(value: bool) -> int:
    return 1 if value else 0


def _minutes(seconds: int) -> int | float:
    minutes = seconds / 60
    return int(minutes) if minutes.is_integer() else round(minutes, 3)


def _names(m: heartbeat_pb2.Service | heartbeat_pb2.Heartbeat | heartbeat_pb2.Alert) -> dict[str, str]:
    """The service a record is about, by its two names, as every legacy record shows it."""
    return {"heartbeat_name": m.heartbeat_name, "service_name": m.service_name}


def service_json(s: heartbeat_pb2.Service) -> dict[str, Any]:
    """A service as the original API listed it, plus Medic's newer fields."""
    return {
        "service_id": s.service_id,
        **_names(s),
        "active": _flag(s.active),
        "alert_interval": _minutes(s.alert_interval_seconds),
        "alert_interval_seconds": s.alert_interval_seconds,
        "threshold": s.threshold,
        "grace_period_seconds": s.grace_period_seconds,
        "team": s.team,
        "team_id": s.team_id or None,
        "priority": enums.PRIORITY.names.get(s.priority, ""),
        "notify_mode": enums.NOTIFY_MODE.names.get(s.notify_mode, ""),
        "muted": _flag(s.muted),
        "date_muted": iso(s.muted_at, s.HasField("muted_at")),
        "down": _flag(s.state == heartbeat_pb2.SERVICE_STATE_DOWN),
        "state": enums.SERVICE_STATE.names.get(s.state, ""),
        "runbook": s.runbook or None,
        "last_heartbeat": iso(s.last_heartbeat_at, s.HasField("last_heartbeat_at")),
        "deadline_at": iso(s.deadline_at, s.HasField("deadline_at")),
        "schedule": s.schedule or None,
        "timezone": s.timezone,
        "max_duration_seconds": s.max_duration_seconds or None,
        "min_duration_seconds": s.min_duration_seconds or None,
        "failure_tolerance": s.failure_tolerance,
        "consecutive_failures": s.consecutive_failures,
        "date_added": iso(s.created_at),
        "date_modified": iso(s.updated_at),
    }


def heartbeat_json(h: heartbeat_pb2.Heartbeat) -> dict[str, Any]:
    return {
        "heartbeat_id": h.heartbeat_id,
        **_names(h),
        "time": iso(h.time),
        "status": h.status,
        "run_id": h.run_id or None,
        "team": h.team,
        "priority": enums.PRIORITY.names.get(h.priority, ""),
    }


def alert_json(a: heartbeat_pb2.Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "alert_name": f"Medic - Heartbeat failure for {a.heartbeat_name}",
        "service_id": a.service_id,
        **_names(a),
        "active": _flag(a.active),
        "reason": enums.ALERT_REASON.names.get(a.reason, ""),
        "external_reference_id": alert_reference(a.alert_id),
        "alert_cycle": a.notification_count,
        "notification_count": a.notification_count,
        "created_date": iso(a.opened_at),
        "closed_date": iso(a.closed_at, a.HasField("closed_at")),
    }


def _notify_mode(value: str) -> int:
    mode = NOTIFY_MODES.get(value.strip().lower())
    if mode is None:
        raise HttpError(400, "Field `notify_mode` must be `all` or `until_success`.")
    return mode


def _run_message(message: str | None) -> str:
    """A run's output as sent; 413 beyond 10 KiB of UTF-8."""
    if not message:
        return ""
    if len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise HttpError(413, f"Field `message` must be at most {MAX_MESSAGE_BYTES} bytes of UTF-8 (10 KiB).")
    return message


def _path_name(request: Request) -> str:
    name = request.path_params["heartbeat_name"]
    if not name:  # "/service/": no name, no route (as in the original)
        raise HttpError(404, f"No route for {request.url.path}.")
    return name


def _not_located(name: str) -> Response:
    # The original answered an update of an unknown name with 200 and success false.
    return envelope(False, f"The heartbeat registration specified: {name} was not located. "
                           "Does it exist?", "", 200)


def _update_request(name: str, data: dict[str, Any]) -> heartbeat_pb2.UpdateServiceRequest:
    lenient.check_body(data, UPDATE_SCHEMA, generic=UPDATE_INVALID)
    request_pb = heartbeat_pb2.UpdateServiceRequest(heartbeat_name=name)
    for field in ("service_name", "team", "runbook", "grace_period_seconds", "team_id", *lenient.JOB_FIELDS):
        if data.get(field) is not None:
            setattr(request_pb, field, data[field])
    for field in ("muted", "active", "down"):
        if data.get(field) is not None:
            setattr(request_pb, field, lenient.flag(data[field]))
    if data.get("threshold") is not None:
        request_pb.threshold = lenient.threshold(data["threshold"])
    interval = lenient.interval_seconds(data)
    if interval is not None:
        request_pb.alert_interval_seconds = interval
    if data.get("priority") is not None:
        request_pb.priority = lenient.priority(data["priority"])
    if data.get("notify_mode") is not None:
        request_pb.notify_mode = _notify_mode(data["notify_mode"])
    return request_pb


def _offset(request: Request, request_type) -> int:
    """The ``offset`` query parameter of a paged list, in the range of the
    request's ``offset`` field (400 otherwise: a newer parameter, checked strictly)."""
    return protojson.fill(request_type(), {"offset": query_int(request, "offset")}).offset


def routes(gw) -> list[Route]:
    async def post_heartbeat(request: Request, decision) -> Response:
        data = await read_json(request, gw.settings.max_body_bytes, big_integers=True)
        lenient.check_body(data, HEARTBEAT_SCHEMA, required=("heartbeat_name", "status"),
                           generic=HEARTBEAT_INVALID)
        name = data["heartbeat_name"]
        if not name.strip():  # no service has a blank name: unknown, as the original found
            raise HttpError(404, f"{name} is not listed as a registered service.")
        message = _run_message(data.get("message"))
        result = await gw.batcher.record(heartbeat_pb2.RecordHeartbeatRequest(
            heartbeat_name=name, status=lenient.status(data["status"]), run_id=data.get("run_id") or "",
            message=message))
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
        offset = _offset(request, heartbeat_pb2.ListHeartbeatsRequest)
        max_count = lenient.max_count(request)
        if max_count == 0:
            return ok([])
        response = await gw.heartbeat.ListHeartbeats(heartbeat_pb2.ListHeartbeatsRequest(
            heartbeat_name=request.query_params.get("heartbeat_name", ""),
            service_name=request.query_params.get("service_name", ""),
            max_count=max_count, offset=offset), metadata=gw.md(decision), timeout=gw.rpc_timeout)
        return link_next_page(ok([heartbeat_json(h) for h in response.heartbeats]), request,
                              response.has_more, offset, len(response.heartbeats))

    async def post_service(request: Request, decision) -> Response:
        data = await read_json(request, gw.settings.max_body_bytes, big_integers=True)
        lenient.check_body(data, REGISTER_SCHEMA, required=("heartbeat_name", "service_name"),
                           generic=REGISTER_INVALID)
        interval = lenient.interval_seconds(data)
        if interval is None and not (data.get("schedule") or "").strip():  # a schedule sets the deadline
            raise lenient.invalid(REGISTER_INVALID, "Field `alert_interval` is missing.")
        if not data["heartbeat_name"].strip():  # also with an environment: "prod-" names nothing
            raise lenient.invalid(REGISTER_INVALID, "Field `heartbeat_name` must not be blank.")
        environment = (data.get("environment") or "").strip()
        name = f"{environment}-{data['heartbeat_name']}" if environment else data["heartbeat_name"]
        request_pb = heartbeat_pb2.RegisterServiceRequest(
            heartbeat_name=name, service_name=data["service_name"], alert_interval_seconds=interval or 0,
            threshold=lenient.threshold(data.get("threshold") or 1),
            grace_period_seconds=data.get("grace_period_seconds") or 0,
            team=data.get("team") or "", team_id=data.get("team_id") or 0, runbook=data.get("runbook") or "")
        if data.get("priority") is not None:
            request_pb.priority = lenient.priority(data["priority"])
        if data.get("notify_mode") is not None:
            request_pb.notify_mode = _notify_mode(data["notify_mode"])
        for field in lenient.JOB_FIELDS:
            if data.get(field) is not None:
                setattr(request_pb, field, data[field])
        response = await gw.heartbeat.RegisterService(request_pb, metadata=gw.md(decision),
                                                      timeout=gw.rpc_timeout)
        if response.created:
            return ok([service_json(response.service)], "Heartbeat successfully registered.", 201)
        return ok([service_json(response.service)], "Heartbeat is already registered.", 200)

    async def list_services(request: Request, decision) -> Response:
        request_pb = heartbeat_pb2.ListServicesRequest(
            service_name=request.query_params.get("service_name", ""))
        active = lenient.query_flag(request, "active")
        if active is not None:
            request_pb.active = active
        response = await gw.heartbeat.ListServices(request_pb, metadata=gw.md(decision),
                                                   timeout=gw.rpc_timeout)
        return ok([service_json(s) for s in response.services])

    async def find_service(name: str, metadata) -> heartbeat_pb2.Service | None:
        try:
            response = await gw.heartbeat.GetService(heartbeat_pb2.GetServiceRequest(heartbeat_name=name),
                                                     metadata=metadata, timeout=gw.rpc_timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return response.service

    async def get_service(request: Request, decision) -> Response:
        service = await find_service(_path_name(request), gw.md(decision))
        return ok([service_json(service)] if service is not None else [])

    async def update_service(request: Request, decision) -> Response:
        name = _path_name(request)
        try:
            data = await read_json(request, gw.settings.max_body_bytes, big_integers=True)
            request_pb = _update_request(name, data)
        except HttpError:
            # The original looked the name up before reading the body. The look-up is part
            # of the update the caller was authorized for: it goes as the gateway itself
            # (a write-only key may lack the read scope of GetService).
            if await find_service(name, ()) is None:
                return _not_located(name)
            raise
        try:
            response = await gw.heartbeat.UpdateService(request_pb, metadata=gw.md(decision),
                                                        timeout=gw.rpc_timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return _not_located(name)
            raise
        return ok([service_json(response.service)], "Successfully posted update")

    async def list_alerts(request: Request, decision) -> Response:
        request_pb = protojson.fill(heartbeat_pb2.ListAlertsRequest(), {
            "limit": query_int(request, "limit"), "offset": _offset(request, heartbeat_pb2.ListAlertsRequest)})
        active = lenient.query_flag(request, "active")
        if active is not None:
            request_pb.active = active
        response = await gw.heartbeat.ListAlerts(request_pb, metadata=gw.md(decision),
                                                 timeout=gw.rpc_timeout)
        return link_next_page(ok([alert_json(a) for a in response.alerts]), request,
                              response.has_more, request_pb.offset, len(response.alerts))

    async def job_signal_body(request: Request) -> tuple[str, str]:
        """The run id and the run's output, where the request has usable ones: a JSON
        body's `run_id` and `message`, or a `text/plain` body as the output whole (what
        `curl --data-binary @-` sends from a pipe), and the `run_id` query parameter
        (which wins). Like the original, the job-signal routes ignore a body they
        cannot read; only an oversized body or output is refused (413)."""
        query_run_id = request.query_params.get("run_id", "")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/plain":
            raw = await read_body(request, gw.settings.max_body_bytes)
            return query_run_id, _run_message(raw.decode("utf-8", "replace"))
        try:
            data = await read_json(request, gw.settings.max_body_bytes, required=False)
        except HttpError as err:
            if err.status == 413:
                raise
            return query_run_id, ""
        run_id = data.get("run_id")
        message = data.get("message")
        return (query_run_id or (run_id if isinstance(run_id, str) else ""),
                _run_message(message) if isinstance(message, str) else "")

    def job_signal(signal: str):
        async def handler(request: Request, decision) -> Response:
            service_id = request.path_params["service_id"]
            not_found = HttpError(404, f"Service ID {service_id} not found.")
            if service_id > lenient.INT64_MAX:
                raise not_found
            run_id, message = await job_signal_body(request)
            try:
                response = await gw.heartbeat.RecordJobSignal(heartbeat_pb2.RecordJobSignalRequest(
                    service_id=service_id, signal=enums.JOB_SIGNAL.numbers[signal], run_id=run_id,
                    message=message),
                    metadata=gw.md(decision), timeout=gw.rpc_timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise not_found from None
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    raise HttpError(400, await inactive_message(service_id)) from None
                raise
            hb = response.heartbeat
            return ok({"service_id": hb.service_id, "heartbeat_name": hb.heartbeat_name,
                       "status": hb.status, "run_id": hb.run_id or None},
                      f"Job signal {hb.status} recorded successfully.", 201)
        return handler

    async def inactive_message(service_id: int) -> str:
        # Part of the job signal the caller was authorized for: goes as the gateway itself.
        response = await gw.heartbeat.GetService(heartbeat_pb2.GetServiceRequest(service_id=service_id),
                                                 timeout=gw.rpc_timeout)
        return f"Service {response.service.heartbeat_name} is inactive."

    return [
        gw.route("POST", "/heartbeat", HB + "RecordHeartbeats", post_heartbeat),
        gw.route("GET", "/heartbeat", HB + "ListHeartbeats", get_heartbeats),
        gw.route("POST", "/service", HB + "RegisterService", post_service),
        gw.route("GET", "/service", HB + "ListServices", list_services),
        # `path`: a name may hold "/" (sent as %2F, or as is).
        gw.route("GET", "/service/{heartbeat_name:path}", HB + "GetService", get_service),
        gw.route("POST", "/service/{heartbeat_name:path}", HB + "UpdateService", update_service),
        gw.route("GET", "/alerts", HB + "ListAlerts", list_alerts),
        *[gw.route("POST", f"/v2/heartbeat/{{service_id:int}}/{signal}", HB + "RecordJobSignal", job_signal(signal))
          for signal in enums.JOB_SIGNAL.numbers],
    ]
