"""The change history over HTTP: ``GET /v2/audit-logs`` (JSON or CSV) and the
snapshot routes, in the original Medic's shapes and messages, in the house
envelope. Each route is one RPC of the heartbeat service; the gateway only
parses the query (dates, integers), shapes the answer and writes the CSV.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http import HttpError, iso, ok, parse_query_int
from medic.v1 import heartbeat_pb2

HB = "/medic.v1.HeartbeatService/"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
MAX_OFFSET = 100_000_000  # the contract's limit of ListAuditEventsRequest.offset
CSV_COLUMNS = ("log_id", "execution_id", "action_type", "actor", "timestamp", "created_at", "details",
               "source", "resource", "resource_id", "service_id", "key_id", "key_name", "principal",
               "request_id", "bulk_id", "before", "after")
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _plain(value: Any) -> Any:
    """Struct numbers are doubles: an integral one is shown as an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _struct(message, field: str) -> Any:
    return _plain(json_format.MessageToDict(getattr(message, field))) if message.HasField(field) else None


def event_json(event: heartbeat_pb2.AuditEvent) -> dict[str, Any]:
    at = iso(event.at)
    return {
        "log_id": event.event_id,
        "execution_id": event.execution_id or None,
        "action_type": event.action_type,
        "details": _struct(event, "details") or {},
        # Who, for people: the caller's X-Actor, else the API key's name.
        "actor": event.actor or event.key_name or event.principal,
        "timestamp": at,
        "created_at": at,
        "source": event.source,
        "resource": event.resource,
        "resource_id": event.resource_id,
        "service_id": event.service_id or None,
        "key_id": event.key_id or None,
        "key_name": event.key_name or None,
        "principal": event.principal,
        "x_actor": event.actor or None,
        "request_id": event.request_id or None,
        "bulk_id": event.bulk_id or None,
        "before": _struct(event, "before"),
        "after": _struct(event, "after"),
    }


def snapshot_json(snapshot: heartbeat_pb2.Snapshot) -> dict[str, Any]:
    return {
        "snapshot_id": snapshot.snapshot_id,
        "service_id": snapshot.service_id,
        "heartbeat_name": snapshot.heartbeat_name,
        "snapshot_data": _struct(snapshot, "snapshot_data") or {},
        "action_type": snapshot.action_type,
        "actor": snapshot.actor or None,
        "bulk_id": snapshot.bulk_id or None,
        "created_at": iso(snapshot.created_at),
        "restored_at": iso(snapshot.restored_at, snapshot.HasField("restored_at")),
    }


def _date(request: Request, name: str, example: str) -> Timestamp | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f"Invalid {name} format. Use ISO format (e.g., {example})") from None
    if when.tzinfo is None:  # a date without a zone is UTC
        when = when.replace(tzinfo=dt.timezone.utc)
    try:
        ts = Timestamp()
        ts.FromDatetime(when)
    except (ValueError, OverflowError):
        raise HttpError(400, f"Invalid {name} format. Use ISO format (e.g., {example})") from None
    return ts


def _date_range(request: Request, message) -> None:
    """The query's start_date and end_date, into the request's start and end."""
    for field, name, example in (("start", "start_date", "2026-01-01T00:00:00Z"),
                                 ("end", "end_date", "2026-01-31T23:59:59Z")):
        ts = _date(request, name, example)
        if ts is not None:
            getattr(message, field).CopyFrom(ts)


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_query_int(raw, name)
    if not -2**63 <= value < 2**63:
        raise HttpError(400, f"Invalid '{name}' parameter")
    return value


def _page(request: Request) -> tuple[int, int]:
    """The original's paging: limit defaults to 50 and is held to 1-250, a
    negative offset counts as 0."""
    limit = _int(request, "limit")
    offset = _int(request, "offset") or 0
    if offset > MAX_OFFSET:
        raise HttpError(400, f"Invalid 'offset' parameter (at most {MAX_OFFSET})")
    return min(max(1, DEFAULT_LIMIT if limit is None else limit), MAX_LIMIT), max(0, offset)


def _id_filter(request: Request, name: str) -> int:
    value = _int(request, name)
    if value is None:
        return 0
    if value < 1:
        raise HttpError(400, f"Invalid '{name}' parameter")
    return value


def _text(request: Request, name: str, max_length: int) -> str:
    value = request.query_params.get(name, "").strip()
    if len(value) > max_length or "\x00" in value:
        raise HttpError(400, f"Invalid '{name}' parameter")
    return value


def _paged_results(entries: list, response, limit: int, offset: int) -> dict[str, Any]:
    return {"entries": entries, "total_count": response.total_count, "limit": limit, "offset": offset,
            "has_more": response.has_more}


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    # CSV injection: a cell a spreadsheet would run as a formula is quoted as text.
    return "'" + text if text.startswith(FORMULA_START) else text


def events_csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([_csv_cell(entry[column] if column != "details" else (entry["details"] or None))
                         for column in CSV_COLUMNS])
    return out.getvalue()


def audit_query(request: Request) -> heartbeat_pb2.ListAuditEventsRequest:
    """The ListAuditEvents request of an audit-log query string (``/v2/audit-logs`` and the
    console's audit page); HttpError 400 naming a bad parameter, in the original's words."""
    limit, offset = _page(request)
    message = heartbeat_pb2.ListAuditEventsRequest(
        execution_id=_id_filter(request, "execution_id"), service_id=_id_filter(request, "service_id"),
        action_type=_text(request, "action_type", 64), actor=_text(request, "actor", 255),
        resource=_text(request, "resource", 64), resource_id=_text(request, "resource_id", 255),
        heartbeat_name=_text(request, "heartbeat_name", 255), bulk_id=_text(request, "bulk_id", 64),
        limit=limit, offset=offset)
    _date_range(request, message)
    return message


def csv_response(entries: list[dict[str, Any]], response, limit: int, offset: int) -> Response:
    """Audit entries as a CSV download, with the paging figures in headers."""
    return Response(events_csv(entries), media_type="text/csv", headers={
        "Content-Disposition": "attachment; filename=audit_logs.csv",
        "X-Total-Count": str(response.total_count), "X-Limit": str(limit),
        "X-Offset": str(offset), "X-Has-More": str(response.has_more).lower()})


def routes(gw) -> list[Route]:
    def call(name: str, request_cls, response_cls):
        holder: dict[str, Any] = {}

        async def invoke(message, decision):
            if "call" not in holder:  # channels exist only once the app has started
                holder["call"] = gw.channels["heartbeat"].unary_unary(
                    HB + name, request_serializer=request_cls.SerializeToString,
                    response_deserializer=response_cls.FromString)
            return await holder["call"](message, metadata=gw.md(decision), timeout=gw.rpc_timeout)
        return invoke

    list_events = call("ListAuditEvents", heartbeat_pb2.ListAuditEventsRequest,
                       heartbeat_pb2.ListAuditEventsResponse)
    list_snapshots = call("ListSnapshots", heartbeat_pb2.ListSnapshotsRequest, heartbeat_pb2.ListSnapshotsResponse)
    get_snapshot = call("GetSnapshot", heartbeat_pb2.GetSnapshotRequest, heartbeat_pb2.GetSnapshotResponse)
    restore = call("RestoreSnapshot", heartbeat_pb2.RestoreSnapshotRequest,
                   heartbeat_pb2.RestoreSnapshotResponse)

    async def audit_logs(request: Request, decision) -> Response:
        message = audit_query(request)
        response = await list_events(message, decision)
        entries = [event_json(e) for e in response.events]
        if "text/csv" in request.headers.get("accept", ""):
            return csv_response(entries, response, message.limit, message.offset)
        return ok(_paged_results(entries, response, message.limit, message.offset))

    async def snapshots(request: Request, decision) -> Response:
        limit, offset = _page(request)
        message = heartbeat_pb2.ListSnapshotsRequest(
            service_id=_id_filter(request, "service_id"), action_type=_text(request, "action_type", 64),
            bulk_id=_text(request, "bulk_id", 64), limit=limit, offset=offset)
        _date_range(request, message)
        response = await list_snapshots(message, decision)
        return ok(_paged_results([snapshot_json(s) for s in response.snapshots], response, limit, offset))

    def _snapshot_id(request: Request) -> int:
        value = request.path_params["snapshot_id"]
        if not 1 <= value < 2**63:
            raise HttpError(404, f"Snapshot {value} not found")
        return value

    async def snapshot(request: Request, decision) -> Response:
        response = await get_snapshot(heartbeat_pb2.GetSnapshotRequest(snapshot_id=_snapshot_id(request)),
                                      decision)
        return ok(snapshot_json(response.snapshot))

    async def restore_snapshot(request: Request, decision) -> Response:
        from gateway import protojson

        response = await restore(heartbeat_pb2.RestoreSnapshotRequest(snapshot_id=_snapshot_id(request)),
                                 decision)
        return ok({"snapshot": snapshot_json(response.snapshot), "service": protojson.to_json(response.service),
                   "recreated": response.recreated}, response.message)

    return [
        gw.route("GET", "/v2/audit-logs", HB + "ListAuditEvents", audit_logs),
        gw.route("GET", "/v2/snapshots", HB + "ListSnapshots", snapshots),
        gw.route("GET", "/v2/snapshots/{snapshot_id:int}", HB + "GetSnapshot", snapshot),
        gw.route("POST", "/v2/snapshots/{snapshot_id:int}/restore", HB + "RestoreSnapshot", restore_snapshot),
    ]
