"""``/docs`` (Swagger UI, served from the swagger-ui-bundle package, no CDN) and
``/docs/openapi.json`` (also at ``/docs/swagger.json``, the original's address),
built from the same field schemas the routes validate with, so the document
cannot drift from the code (a test compares the two).

The limits of the legacy fields are the ones the legacy routes check
(``gateway.legacy_input.RANGES``, derived from the contract fields they fill);
where the legacy routes normalise a value instead of refusing it (see
``gateway.legacy_input``), the schema allows it and says how it is read. Public
paths declare ``security: []``."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import medic
from medic.v1 import heartbeat_pb2
from gateway import legacy, protojson, v2, v2_routes
from gateway import legacy_input as lenient

JSON_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer"},
              "number": {"type": "number"}, "boolean": {"type": "boolean"},
              "object": {"type": "object"}, "array": {"type": "array"}}
QUERY_FLAG = {"type": "string", "pattern": lenient.QUERY_FLAG_PATTERN}  # empty: not given


def _contract(message, name: str) -> dict[str, Any]:
    """The OpenAPI schema of a contract field, limits included."""
    return protojson.field_schema(message.DESCRIPTOR.fields_by_name[name])


def _legacy(name: str, kind: str) -> dict[str, Any]:
    """The schema of a legacy body field: its type and the range the legacy routes accept."""
    if kind not in ("integer", "number", "flag"):
        return dict(JSON_TYPES[kind])
    number = {"type": "number" if kind == "number" else "integer"}
    if name in lenient.RANGES:
        number["minimum"], number["maximum"] = lenient.RANGES[name]
    if kind == "flag":  # the original's 0/1: 0 is false, any other integer true
        return {"anyOf": [number, {"type": "boolean"}],
                "description": "0 or 1 (any other integer counts as 1; true/false accepted)"}
    return number


def _legacy_body(schema: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: _legacy(name, kind) for name, kind in schema.items()}


_REGISTER = heartbeat_pb2.RegisterServiceRequest
_UPDATE = heartbeat_pb2.UpdateServiceRequest
# The strings the services check (their contract limits); the legacy numbers as the
# legacy routes read them; priority any text (unknown: p3).
REGISTER_LIMITS = {
    **_legacy_body(legacy.REGISTER_SCHEMA),
    "heartbeat_name": _contract(_REGISTER, "heartbeat_name"),
    "service_name": _contract(_REGISTER, "service_name"),
    "notify_mode": {"type": "string", "enum": list(legacy.NOTIFY_MODES)},
}
UPDATE_LIMITS = {
    **_legacy_body(legacy.UPDATE_SCHEMA),
    "service_name": _contract(_UPDATE, "service_name"),
    "notify_mode": {"type": "string", "enum": list(legacy.NOTIFY_MODES)},
}
# Any name can be asked for: an unknown one reads as [] (an update: 200, not located).
NAME_IN_PATH = {"type": "string", "minLength": 1}
# Checked by the heartbeat service for each heartbeat (deadline.normalize_status); a
# blank status reads as UP, a blank or unknown name is a 404.
_RUN_ID = _contract(heartbeat_pb2.RecordJobSignalRequest, "run_id")
HEARTBEAT_LIMITS = {"heartbeat_name": {"type": "string"},
                    "status": {"type": "string", "maxLength": 64, "pattern": protojson.NO_NUL},
                    "run_id": {**_RUN_ID, "pattern": protojson.NO_NUL},
                    "message": {"type": "string", "pattern": protojson.NO_NUL}}
# The job-signal routes use a string `run_id` of a JSON object and ignore anything else
# in the body, or a body that is not a JSON object at all, as the original did.
_MESSAGE = "The run's output (e.g. its exit code and last lines), at most 10 KiB of UTF-8 (413 beyond)"
JOB_SIGNAL_BODY = {"anyOf": [
    {"type": "object", "properties": {"run_id": {
        "anyOf": [_RUN_ID, {"not": {"type": "string"}}],
        "description": f"Optional job-run id, at most {_RUN_ID['maxLength']} characters; "
                       "a value that is not a string is ignored"},
        "message": {"anyOf": [{"type": "string"}, {"not": {"type": "string"}}],
                    "description": _MESSAGE + "; a value that is not a string is ignored"}}},
    {"not": {"type": "object"}}],
    "description": "Only a string `run_id` and a string `message` are used; anything else in the body "
                   "is ignored"}
JOB_SIGNAL_TEXT = {"type": "string", "description": _MESSAGE + ", the whole `text/plain` body"}
JOB_SIGNAL_RUN_ID = {**_RUN_ID, "description": "The job-run id (wins over the body's `run_id`); "
                                              "correlates the start with its end"}
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


def _offset(request_type) -> tuple[str, dict[str, Any], str]:
    """The ``offset`` query parameter of a paged list: the request's contract field."""
    return ("offset", _contract(request_type, "offset"), v2.OFFSET_NOTE)


def _paged(responses: dict[str, Any]) -> dict[str, Any]:
    responses["200"]["headers"] = v2.NEXT_PAGE
    return responses


def openapi() -> dict[str, Any]:
    register_docs = {
        "alert_interval": "Minutes before alerting (legacy); required unless alert_interval_seconds is set; "
                          "below one second reads as 1 s",
        "alert_interval_seconds": "Seconds before alerting; overrides alert_interval",
        "environment": "Prefix: the service is stored as <environment>-<heartbeat_name>",
        "priority": "p1..p5 (default p3; any other text reads as p3)", "notify_mode": "all | until_success",
        "threshold": "Heartbeats needed per interval (default 1; below 1 reads as 1)",
        "team": "Team name (default site-reliability)",
        "schedule": "A 5-field cron expression (e.g. `30 2 * * *`): the job is expected at each time instead "
                    "of every alert interval (which then paces reminders); \"\" removes it",
        "timezone": "IANA time zone of the schedule (default UTC)",
        "max_duration_seconds": "A run open longer alerts run_too_long (0: no limit)",
        "min_duration_seconds": "A run completed faster alerts run_too_fast (0: no limit)",
        "failure_tolerance": "Failures in a row that open no alert (default 0)",
    }
    # One of the two intervals, given (null is "not given").
    one_interval = [{"required": [name], "properties": {name: {"type": "integer"}}}
                    for name in ("alert_interval", "alert_interval_seconds")]
    paths: dict[str, Any] = {
        "/heartbeat": {
            "post": {"summary": "Post a heartbeat", "tags": ["heartbeats"],
                     "requestBody": _body(legacy.HEARTBEAT_SCHEMA, ("heartbeat_name", "status"),
                                          {"status": "Any word up to 64 characters; FAILED and DOWN report a "
                                                     "failure; blank reads as UP; STARTED starts a job run and "
                                                     "COMPLETED ends one",
                                           "run_id": "The job run this starts or ends (without one: the newest "
                                                     "open run)",
                                           "message": "The run's output, at most 10 KiB of UTF-8 (413 beyond)"},
                                          HEARTBEAT_LIMITS),
                     "responses": _responses({201: "Heartbeat Posted Successfully.",
                                              404: "Unknown heartbeat name",
                                              **COMMON_ERRORS})},
            "get": {"summary": "List heartbeats, newest first (at most 250 a page)", "tags": ["heartbeats"],
                    "parameters": _query(("heartbeat_name", "string", "Filter by heartbeat name"),
                                         ("service_name", "string", "Filter by service name"),
                                         # Any text: what is not a count reads as the default.
                                         ("maxCount", {"type": "string"},
                                          "An integer, at most 250 (more counts as 250); 0 lists nothing; "
                                          "absent, not an integer or negative: 250"),
                                         _offset(heartbeat_pb2.ListHeartbeatsRequest)),
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
                                         ("active", QUERY_FLAG, "Filter by active flag: 0 inactive, any other "
                                                                "integer active (true/false too)")),
                    "responses": _responses({200: "Services", **COMMON_ERRORS})},
        },
        "/service/{heartbeat_name}": {
            "get": {"summary": "Get one service (percent-encode the name: a%2Fb)", "tags": ["services"],
                    "parameters": [_path("heartbeat_name", NAME_IN_PATH)],
                    "responses": _responses({200: "The service (a one-item list; empty for an unknown name)",
                                             **COMMON_ERRORS})},
            "post": {"summary": "Update a service (only the fields given)", "tags": ["services"],
                     "parameters": [_path("heartbeat_name", NAME_IN_PATH)],
                     "requestBody": {**_body(legacy.UPDATE_SCHEMA, (), {
                         **register_docs, "alert_interval": "Minutes (may be fractional); below one second "
                                                             "reads as 1 s",
                         "down": "Mark down (1) or up (0) by hand"}, UPDATE_LIMITS),
                         "required": True},
                     "responses": _responses({200: "Successfully posted update (success false: the name "
                                                   "was not located)", **COMMON_ERRORS})},
        },
        "/alerts": {
            "get": {"summary": "List alerts, newest first: a page of `limit` (default: the latest 100, or 1,000 "
                               "with the `active` filter)", "tags": ["alerts"],
                    "parameters": _query(("active", QUERY_FLAG, "Only active (any integer but 0) or closed (0) "
                                                                "alerts"),
                                         ("limit", _contract(heartbeat_pb2.ListAlertsRequest, "limit"),
                                          "Page size; 0 or absent: the default"),
                                         _offset(heartbeat_pb2.ListAlertsRequest)),
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
    }
    for document in ("/docs/openapi.json", "/docs/swagger.json"):  # the latter: the original's address
        paths[document] = {"get": {"summary": "This OpenAPI document", "tags": ["docs"], **PUBLIC,
                                   "responses": {"200": {"description": "OpenAPI 3.0",
                                                         "content": {"application/json": {"schema": {
                                                             "type": "object"}}}}}}}
    job_service_id = _contract(heartbeat_pb2.RecordJobSignalRequest, "service_id")
    for signal, status in (("start", "STARTED"), ("complete", "COMPLETED"), ("fail", "FAILED")):
        paths[f"/v2/heartbeat/{{service_id}}/{signal}"] = {"post": {
            "summary": f"Record a job-run signal ({status})", "tags": ["heartbeats"],
            "description": "Without a run id, an end signal ends the service's newest open run.",
            "parameters": [_path("service_id", {**job_service_id, "minimum": 0}),
                           *_query(("run_id", JOB_SIGNAL_RUN_ID, JOB_SIGNAL_RUN_ID["description"]))],
            "requestBody": {"required": False, "content": {"application/json": {"schema": JOB_SIGNAL_BODY},
                                                           "text/plain": {"schema": JOB_SIGNAL_TEXT}}},
            "responses": _responses({201: f"Job signal {status} recorded successfully.",
                                     404: "Service ID <id> not found.", **COMMON_ERRORS})}}
    paths.update(v2.openapi_paths(v2_routes.TABLE, COMMON_ERRORS))
    paths.update(_history_paths())
    paths.update(_remediation_paths())
    return {
        "openapi": "3.0.3",
        "info": {"title": "Medic", "version": medic.__version__,
                 "description": "Heartbeat monitoring. Every JSON response uses the envelope "
                                "{success, message, results}."},
        "paths": paths,
        "components": {
            "schemas": {"Envelope": ENVELOPE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "API key mdk_<key_id>_<secret>"},
                                "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret",
                                                  "description": "MEDIC_WEBHOOK_SECRET (playbook webhook trigger)"},
                                "slackSignature": {"type": "apiKey", "in": "header", "name": "X-Slack-Signature",
                                                   "description": "v0=HMAC-SHA256 of v0:<timestamp>:<body> with "
                                                                  "MEDIC_SLACK_SIGNING_SECRET"}},
        },
        "security": [{"bearer": []}],
    }


def _history_paths() -> dict[str, Any]:
    """The change-history routes (``gateway.history``): the original's query parameters."""
    from medic import audit

    int64 = {"type": "integer", "minimum": -2**63, "maximum": 2**63 - 1}
    an_id = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    text = {"type": "string", "maxLength": 255, "pattern": protojson.NO_NUL}
    date = {"type": "string", "description": "ISO 8601, e.g. 2026-01-01T00:00:00Z (no zone: UTC)"}
    paging = (("limit", int64, "Page size, default 50, held to 1-250"),
              ("offset", int64, "Entries to pass over (a negative one counts as 0)"))
    snapshot_id = [_path("snapshot_id", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1})]
    return {
        "/v2/audit-logs": {"get": {
            "summary": "The change history, newest first: who changed what, before and after (secrets "
                       "never); Accept: text/csv exports the page as CSV with X-Total-Count, X-Limit, "
                       "X-Offset and X-Has-More", "tags": ["history"],
            "parameters": _query(
                ("execution_id", an_id, "A remediation run"), ("service_id", an_id, "A service's history"),
                ("action_type", {"type": "string", "enum": list(audit.ACTION_TYPES)}, "What kind of change"),
                ("actor", text, "An X-Actor, an API key's name or its id"),
                ("start_date", date, "Changes at or after"), ("end_date", date, "Changes at or before"),
                ("resource", {**text, "maxLength": 64}, "service, team, notification_target, webhook, "
                                                         "api_key, delivery, alert, maintenance_window"),
                ("resource_id", text, "With resource: one of them"),
                ("heartbeat_name", text, "A service's history, by heartbeat name"),
                ("bulk_id", {**text, "maxLength": 64}, "The events of one bulk change"), *paging),
            "responses": _responses({200: "{entries, total_count, limit, offset, has_more}",
                                     **COMMON_ERRORS, 404: "Unknown heartbeat_name"})}},
        "/v2/snapshots": {"get": {
            "summary": "Service snapshots, newest first (a service before each destructive change)",
            "tags": ["history"],
            "parameters": _query(
                ("service_id", an_id, "One service's snapshots"),
                ("action_type", {"type": "string", "enum": list(audit.SNAPSHOT_ACTIONS)},
                 "The change it was taken before"),
                ("start_date", date, "Taken at or after"), ("end_date", date, "Taken at or before"),
                ("bulk_id", {**text, "maxLength": 64}, "The snapshots of one bulk change"), *paging),
            "responses": _responses({200: "{entries, total_count, limit, offset, has_more}", **COMMON_ERRORS})}},
        "/v2/snapshots/{snapshot_id}": {"get": {
            "summary": "One snapshot", "tags": ["history"], "parameters": snapshot_id,
            "responses": _responses({200: "The snapshot", 404: "Snapshot not found", **COMMON_ERRORS})}},
        "/v2/snapshots/{snapshot_id}/restore": {"post": {
            "summary": "Put the service and its notification targets back as they were in the snapshot "
                       "(undo; itself audited and snapshotted); a deleted service is re-created with a new id, "
                       "and the message says so",
            "tags": ["history"], "parameters": snapshot_id,
            "responses": _responses({200: "{snapshot, service, recreated}", 404: "Snapshot not found",
                                     **COMMON_ERRORS})}},
    }


def _remediation_paths() -> dict[str, Any]:
    """The two remediation routes that take no API key (gateway/remediation.py): each is
    authenticated by a secret of its own, declared as its own security scheme."""
    from medic.v1 import remediation_pb2

    execute = remediation_pb2.ExecutePlaybookRequest
    trigger_body = {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "service_id": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}],
                           "nullable": True, "description": "The service the execution is about"},
            "variables": {"type": "object", "nullable": True,
                          "description": "Extra ${NAME} variables: strings, numbers or booleans"}}}}}}
    return {
        "/v2/webhooks/playbooks/{playbook_id}/trigger": {"post": {
            "summary": "Start a playbook from an outside system (X-Webhook-Secret; 10 a minute per client address)",
            "tags": ["remediation"], "security": [{"webhookSecret": []}],
            "parameters": [_path("playbook_id", {**_contract(execute, "playbook_id"), "minimum": 0})],
            "requestBody": trigger_body,
            "responses": _responses({201: "Playbook execution started successfully.",
                                     401: "Missing X-Webhook-Secret header / Invalid webhook secret",
                                     404: "Playbook ID <id> not found.",
                                     503: "Webhook endpoint not configured", **{
                                         k: v for k, v in COMMON_ERRORS.items() if k not in (401, 403, 503)}})}},
        "/v2/slack/interactions": {"post": {
            "summary": "Slack's interactive approval buttons (signed by Slack with MEDIC_SLACK_SIGNING_SECRET)",
            "tags": ["remediation"], "security": [{"slackSignature": []}],
            "parameters": [{"name": "X-Slack-Request-Timestamp", "in": "header", "required": True,
                            "schema": {"type": "string"}, "description": "Unix seconds, within 5 minutes of now"}],
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["payload"],
                "properties": {"payload": {"type": "string", "description": "Slack's block_actions JSON"}}}}}},
            "responses": {"200": {"description": "Handled (an error, if any, is shown to the person who clicked)"},
                          "401": {"description": "Invalid signature (or timestamp outside 5 minutes)"},
                          "503": {"description": "MEDIC_SLACK_SIGNING_SECRET is not set"}}}},
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
