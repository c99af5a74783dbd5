"""``/docs`` (Swagger UI, served from the swagger-ui-bundle package, no CDN) and
``/docs/openapi.json`` (also at ``/docs/swagger.json``, the original's address), built from the same field schemas the routes validate
with, so the document cannot drift from the code (a test compares the two)."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import medic
from gateway import legacy, v2, v2_routes

JSON_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer"},
              "number": {"type": "number"}, "boolean": {"type": "boolean"},
              "flag": {"type": "integer",
                       "description": "0 or 1 (any other integer counts as 1; true/false accepted)"},
              "object": {"type": "object"}, "array": {"type": "array"}}

ENVELOPE = {
    "type": "object",
    "required": ["success", "message", "results"],
    "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}, "results": {}},
}


def _body(schema: dict[str, str], required: tuple[str, ...] = (), descriptions: dict | None = None):
    properties = {}
    for name, kind in schema.items():
        prop = dict(JSON_TYPES[kind])
        if descriptions and name in descriptions:
            prop["description"] = descriptions[name]
        properties[name] = prop
    return {"required": bool(required), "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "properties": properties,
        **({"required": list(required)} if required else {})}}}}


def _responses(codes: dict[int, str]) -> dict[str, Any]:
    return {str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
            for code, text in codes.items()}


def _query(*params: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "in": "query", "required": False, "schema": dict(JSON_TYPES[kind]),
             "description": text} for name, kind, text in params]


def _path(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": dict(JSON_TYPES[kind])}


COMMON_ERRORS = {400: "Invalid input", 401: "Missing or invalid API key", 403: "Missing scope",
                 413: "Body over the size limit", 429: "Rate limited", 503: "A dependency is unavailable"}


def openapi() -> dict[str, Any]:
    register_docs = {
        "alert_interval": "Minutes before alerting (legacy); required unless alert_interval_seconds is set; "
                          "below one second reads as 1 s",
        "alert_interval_seconds": "Seconds before alerting (>= 1); overrides alert_interval",
        "environment": "Prefix: the service is stored as <environment>-<heartbeat_name>",
        "priority": "p1..p5 (default p3; any other text reads as p3)", "notify_mode": "all | until_success",
        "threshold": "Heartbeats needed per interval (default 1; below 1 reads as 1)",
        "team": "Team name (default site-reliability)",
    }
    paths: dict[str, Any] = {
        "/heartbeat": {
            "post": {"summary": "Post a heartbeat", "tags": ["heartbeats"],
                     "requestBody": _body(legacy.HEARTBEAT_SCHEMA, ("heartbeat_name", "status"),
                                          {"status": "Any word up to 64 characters; FAILED and DOWN report a "
                                                     "failure; blank reads as UP"}),
                     "responses": _responses({201: "Heartbeat Posted Successfully.",
                                              404: "Unknown heartbeat name",
                                              **COMMON_ERRORS})},
            "get": {"summary": "List heartbeats, newest first (at most 250)", "tags": ["heartbeats"],
                    "parameters": _query(("heartbeat_name", "string", "Filter by heartbeat name"),
                                         ("service_name", "string", "Filter by service name"),
                                         ("maxCount", "integer", "At most 250; 0 lists nothing; absent, "
                                                                 "not a number or negative: 250")),
                    "responses": _responses({200: "Heartbeats", **COMMON_ERRORS})},
        },
        "/service": {
            "post": {"summary": "Register a service", "tags": ["services"],
                     "requestBody": _body(legacy.REGISTER_SCHEMA, ("heartbeat_name", "service_name"),
                                          register_docs),
                     "responses": _responses({201: "Heartbeat successfully registered.",
                                              200: "Heartbeat is already registered.", **COMMON_ERRORS})},
            "get": {"summary": "List services", "tags": ["services"],
                    "parameters": _query(("service_name", "string", "Filter by service name"),
                                         ("active", "flag", "Filter by active flag")),
                    "responses": _responses({200: "Services", **COMMON_ERRORS})},
        },
        "/service/{heartbeat_name}": {
            "get": {"summary": "Get one service (percent-encode the name: a%2Fb)", "tags": ["services"],
                    "parameters": [_path("heartbeat_name")],
                    "responses": _responses({200: "The service (a one-item list; empty for an unknown name)",
                                             **COMMON_ERRORS})},
            "post": {"summary": "Update a service (only the fields given)", "tags": ["services"],
                     "parameters": [_path("heartbeat_name")],
                     "requestBody": _body(legacy.UPDATE_SCHEMA, (), {
                         "alert_interval": "Minutes (may be fractional)",
                         "down": "Mark down (1) or up (0) by hand", **register_docs}),
                     "responses": _responses({200: "Successfully posted update (success false: the name "
                                                   "was not located)", **COMMON_ERRORS})},
        },
        "/alerts": {
            "get": {"summary": "List alerts, newest first (latest 100 without a filter)", "tags": ["alerts"],
                    "parameters": _query(("active", "flag", "Only active (1) or closed (0) alerts")),
                    "responses": _responses({200: "Alerts", **COMMON_ERRORS})},
        },
        "/v1/healthcheck/network": {"get": {"summary": "Network check", "tags": ["health"],
                                            "responses": {"204": {"description": "Reachable"}}}},
        "/health": {"get": {"summary": "Health of every component", "tags": ["health"],
                            "responses": {"200": {"description": "Healthy"},
                                          "503": {"description": "A component is unhealthy"}}}},
        "/health/live": {"get": {"summary": "Liveness", "tags": ["health"],
                                 "responses": {"200": {"description": "Alive"}}}},
        "/health/ready": {"get": {"summary": "Readiness, with per-dependency detail", "tags": ["health"],
                                  "responses": {"200": {"description": "Ready"},
                                                "503": {"description": "Not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["health"],
                             "responses": {"200": {"description": "Prometheus text format"}}}},
    }
    for signal, status in (("start", "STARTED"), ("complete", "COMPLETED"), ("fail", "FAILED")):
        paths[f"/v2/heartbeat/{{service_id}}/{signal}"] = {"post": {
            "summary": f"Record a job-run signal ({status})", "tags": ["heartbeats"],
            "parameters": [_path("service_id", "integer")],
            # Lenient as the original: other fields, a non-string run_id or a body that is
            # not JSON are ignored, so the schema closes nothing.
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"run_id": {
                    "type": "string", "description": "Optional job-run id, at most 255 characters; "
                                                     "anything else in the body is ignored"}}}}}},
            "responses": _responses({201: f"Job signal {status} recorded successfully.",
                                     404: "Service ID <id> not found.", **COMMON_ERRORS})}}
    paths.update(v2.openapi_paths(v2_routes.TABLE))
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
            Route("/docs/swagger.json", spec, methods=["GET"]),
            Mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger")]
