"""``/docs`` (Swagger UI, served from the swagger-ui-bundle package, no CDN) and
``/docs/openapi.json``, built from the same field schemas the routes validate
with, so the document cannot drift from the code (a test compares the two).

The limits of the legacy fields come from the contract fields they fill (the
``limits`` option in the protos), so the document states what the services
enforce; public paths declare ``security: []``."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import medic
from medic import contracts
from medic.v1 import heartbeat_pb2
from gateway import legacy, protojson, v2, v2_routes

JSON_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer"},
              "number": {"type": "number"}, "boolean": {"type": "boolean"},
              "flag": {"anyOf": [{"type": "integer", "enum": [0, 1]}, {"type": "boolean"}],
                       "description": "0 or 1 (true/false accepted)"},
              "object": {"type": "object"}, "array": {"type": "array"}}
QUERY_FLAG = {"type": "string", "enum": ["0", "1", "true", "false", ""]}  # "": not given


def _contract(message, name: str) -> dict[str, Any]:
    """The OpenAPI schema of a contract field, limits included."""
    return protojson.field_schema(message.DESCRIPTOR.fields_by_name[name])


_REGISTER = heartbeat_pb2.RegisterServiceRequest
_UPDATE = heartbeat_pb2.UpdateServiceRequest
_INTERVAL = contracts.field_limits(_REGISTER.DESCRIPTOR.fields_by_name["alert_interval_seconds"])
# Legacy fields -> the schema of what they become in the contract. The legacy
# `alert_interval` is in minutes (rounded to seconds).
REGISTER_LIMITS = {
    "heartbeat_name": _contract(_REGISTER, "heartbeat_name"),
    "service_name": _contract(_REGISTER, "service_name"),
    "alert_interval": {"type": "integer", "minimum": 1, "maximum": _INTERVAL.maximum // 60},
    "alert_interval_seconds": _contract(_REGISTER, "alert_interval_seconds"),
    "threshold": _contract(_REGISTER, "threshold"),
    "grace_period_seconds": _contract(_REGISTER, "grace_period_seconds"),
    "team_id": _contract(_REGISTER, "team_id"),
    "priority": {"type": "string", "enum": list(legacy.PRIORITIES)},
    "notify_mode": {"type": "string", "enum": list(legacy.NOTIFY_MODES)},
}
UPDATE_LIMITS = {
    **REGISTER_LIMITS,
    "service_name": _contract(_UPDATE, "service_name"),
    "alert_interval": {"type": "number", "minimum": 0.01, "maximum": _INTERVAL.maximum // 60},
    "threshold": _contract(_UPDATE, "threshold"),
}
NAME_IN_PATH = _contract(_REGISTER, "heartbeat_name")
# Checked by the heartbeat service for each heartbeat (deadline.normalize_status).
HEARTBEAT_LIMITS = {"heartbeat_name": NAME_IN_PATH,
                    "status": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": protojson.NOT_BLANK}}
JOB_SIGNAL_LIMITS = {"run_id": _contract(heartbeat_pb2.RecordJobSignalRequest, "run_id")}
PUBLIC = {"security": []}

ENVELOPE = {
    "type": "object",
    "required": ["success", "message", "results"],
    "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}, "results": {}},
}


def _body(schema: dict[str, str], required: tuple[str, ...] = (), descriptions: dict | None = None,
          limits: dict[str, dict] | None = None, **extra):
    properties = {}
    for name, kind in schema.items():
        prop = dict((limits or {}).get(name) or JSON_TYPES[kind])
        if descriptions and name in descriptions:
            prop["description"] = descriptions[name]
        if name not in required:  # null: "not given"
            prop["nullable"] = True
        properties[name] = prop
    return {"required": bool(required), "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "properties": properties,
        **({"required": list(required)} if required else {}), **extra}}}}


def _responses(codes: dict[int, str]) -> dict[str, Any]:
    return {str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
            for code, text in codes.items()}


def _query(*params: tuple[str, Any, str]) -> list[dict[str, Any]]:
    """(name, kind or schema, description) -> query parameters."""
    return [{"name": name, "in": "query", "required": False,
             "schema": dict(JSON_TYPES[kind]) if isinstance(kind, str) else kind,
             "description": text} for name, kind, text in params]


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


COMMON_ERRORS = {400: "Invalid input", 401: "Missing or invalid API key", 403: "Missing scope",
                 413: "Body over the size limit", 429: "Rate limited", 503: "A dependency is unavailable",
                 504: "A dependency did not answer in time"}
# Paging of a list endpoint (offset is a contract field: ListAlertsRequest's).
OFFSET = ("offset", _contract(heartbeat_pb2.ListAlertsRequest, "offset"),
          "Items to pass over (paging; follow the `Link` header's rel=\"next\")")


def _paged(responses: dict[str, Any]) -> dict[str, Any]:
    responses["200"]["headers"] = v2.NEXT_PAGE
    return responses


def openapi() -> dict[str, Any]:
    register_docs = {
        "alert_interval": "Minutes before alerting (legacy); required unless alert_interval_seconds is set",
        "alert_interval_seconds": "Seconds before alerting; overrides alert_interval",
        "environment": "Prefix: the service is stored as <environment>-<heartbeat_name>",
        "priority": "p1..p5 (default p3)", "notify_mode": "all | until_success",
        "threshold": "Heartbeats needed per interval (default 1)",
        "team": "Team name (default site-reliability)",
    }
    # One of the two intervals, given (null is "not given").
    one_interval = [{"required": [name], "properties": {name: {"type": "integer"}}}
                    for name in ("alert_interval", "alert_interval_seconds")]
    paths: dict[str, Any] = {
        "/heartbeat": {
            "post": {"summary": "Post a heartbeat", "tags": ["heartbeats"],
                     "requestBody": _body(legacy.HEARTBEAT_SCHEMA, ("heartbeat_name", "status"),
                                          {"status": "Any word up to 64 characters; FAILED and DOWN report a failure"},
                                          HEARTBEAT_LIMITS),
                     "responses": _responses({201: "Heartbeat Posted Successfully.",
                                              404: "Unknown heartbeat name",
                                              **COMMON_ERRORS})},
            "get": {"summary": "List heartbeats, newest first (at most 250 a page)", "tags": ["heartbeats"],
                    "parameters": _query(("heartbeat_name", "string", "Filter by heartbeat name"),
                                         ("service_name", "string", "Filter by service name"),
                                         ("maxCount", {"type": "integer", "minimum": 1},
                                          "1-250 (default 250; more counts as 250)"), OFFSET),
                    "responses": _paged(_responses({200: "Heartbeats", **COMMON_ERRORS}))},
        },
        "/service": {
            "post": {"summary": "Register a service", "tags": ["services"],
                     "requestBody": _body(legacy.REGISTER_SCHEMA, ("heartbeat_name", "service_name"),
                                          register_docs, REGISTER_LIMITS, anyOf=one_interval),
                     "responses": _responses({201: "Heartbeat successfully registered.",
                                              200: "Heartbeat is already registered.", **COMMON_ERRORS})},
            "get": {"summary": "List services", "tags": ["services"],
                    "parameters": _query(("service_name", "string", "Filter by service name"),
                                         ("active", QUERY_FLAG, "Filter by active flag (0/1)")),
                    "responses": _responses({200: "Services", **COMMON_ERRORS})},
        },
        "/service/{heartbeat_name}": {
            "get": {"summary": "Get one service", "tags": ["services"],
                    "parameters": [_path("heartbeat_name", NAME_IN_PATH)],
                    "responses": _responses({200: "The service (a one-item list)", 404: "Unknown", **COMMON_ERRORS})},
            "post": {"summary": "Update a service (only the fields given)", "tags": ["services"],
                     "parameters": [_path("heartbeat_name", NAME_IN_PATH)],
                     "requestBody": {**_body(legacy.UPDATE_SCHEMA, (), {
                         "alert_interval": "Minutes (may be fractional)",
                         "down": "Mark down (1) or up (0) by hand", **register_docs}, UPDATE_LIMITS),
                         "required": True},
                     "responses": _responses({200: "Successfully posted update", 404: "Unknown",
                                              **COMMON_ERRORS})},
        },
        "/alerts": {
            "get": {"summary": "List alerts, newest first: a page of `limit` (default: the latest 100, or 1,000 "
                               "with the `active` filter)", "tags": ["alerts"],
                    "parameters": _query(("active", QUERY_FLAG, "Only active (1) or closed (0) alerts"),
                                         ("limit", _contract(heartbeat_pb2.ListAlertsRequest, "limit"),
                                          "Page size; 0 or absent: the default"), OFFSET),
                    "responses": _paged(_responses({200: "Alerts", **COMMON_ERRORS}))},
        },
        "/v1/healthcheck/network": {"get": {"summary": "Network check", "tags": ["health"], **PUBLIC,
                                            "responses": {"204": {"description": "Reachable"}}}},
        "/health": {"get": {"summary": "Health of every component", "tags": ["health"], **PUBLIC,
                            "responses": {"200": {"description": "Healthy"},
                                          "503": {"description": "A component is unhealthy"}}}},
        "/health/live": {"get": {"summary": "Liveness", "tags": ["health"], **PUBLIC,
                                 "responses": {"200": {"description": "Alive"}}}},
        "/health/ready": {"get": {"summary": "Readiness, with per-dependency detail", "tags": ["health"], **PUBLIC,
                                  "responses": {"200": {"description": "Ready"},
                                                "503": {"description": "Not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["health"], **PUBLIC,
                             "responses": {"200": {"description": "Prometheus text format"}}}},
        "/docs": {"get": {"summary": "This API's reference (Swagger UI)", "tags": ["docs"], **PUBLIC,
                          "responses": {"200": {"description": "An HTML page",
                                                "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/docs/openapi.json": {"get": {"summary": "This OpenAPI document", "tags": ["docs"], **PUBLIC,
                                       "responses": {"200": {"description": "OpenAPI 3.0",
                                                             "content": {"application/json": {"schema": {
                                                                 "type": "object"}}}}}}},
    }
    job_service_id = _contract(heartbeat_pb2.RecordJobSignalRequest, "service_id")
    for signal, status in (("start", "STARTED"), ("complete", "COMPLETED"), ("fail", "FAILED")):
        paths[f"/v2/heartbeat/{{service_id}}/{signal}"] = {"post": {
            "summary": f"Record a job-run signal ({status})", "tags": ["heartbeats"],
            "parameters": [_path("service_id", {**job_service_id, "minimum": 0})],
            "requestBody": {**_body(legacy.JOB_SIGNAL_SCHEMA, limits=JOB_SIGNAL_LIMITS), "required": False},
            "responses": _responses({201: f"Job signal {status} recorded successfully.",
                                     404: "Unknown service id", **COMMON_ERRORS})}}
    paths.update(v2.openapi_paths(v2_routes.TABLE, COMMON_ERRORS))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Medic", "version": medic.__version__,
                 "description": "Heartbeat monitoring. Every JSON response uses the envelope "
                                "{success, message, results}."},
        "paths": paths,
        "components": {
            "schemas": {"Envelope": ENVELOPE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "API key mdk_<key_id>_<secret>"}},
        },
        "security": [{"bearer": []}],
    }


SWAGGER_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Medic API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/docs/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


def routes() -> list:
    from swagger_ui_bundle import swagger_ui_path

    document = orjson.dumps(openapi())

    async def spec(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def ui(request: Request) -> Response:
        return HTMLResponse(SWAGGER_HTML)

    return [Route("/docs", ui, methods=["GET"]), Route("/docs/", ui, methods=["GET"]),
            Route("/docs/openapi.json", spec, methods=["GET"]),
            Mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger")]
