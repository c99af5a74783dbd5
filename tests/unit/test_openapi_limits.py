"""The OpenAPI document states what the server enforces, and the contracts'
field limits hold in the gateway's JSON conversion and on the gRPC side."""
from __future__ import annotations

import re

import pytest

from gateway import docs, protojson
from gateway.http import HttpError
from medic import contracts
from medic.v1 import auth_pb2, delivery_pb2, heartbeat_pb2, routing_pb2

PUBLIC_PATHS = ("/health", "/health/live", "/health/ready", "/metrics", "/v1/healthcheck/network",
                "/docs", "/docs/openapi.json", "/docs/swagger.json")


@pytest.fixture(scope="module")
def spec():
    return docs.openapi()


def _operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _integer_schemas(schema):
    """Every integer schema inside ``schema`` (properties, items, anyOf)."""
    if schema.get("type") == "integer":
        yield schema
    for sub in schema.get("properties", {}).values():
        yield from _integer_schemas(sub)
    if "items" in schema:
        yield from _integer_schemas(schema["items"])
    if schema.get("type") != "object":  # an object's anyOf only says which fields it needs
        for option in schema.get("anyOf", []):
            yield from _integer_schemas(option)


def test_public_endpoints_declare_no_security_and_the_rest_need_a_key(spec):
    assert spec["security"] == [{"bearer": []}]
    # Authenticated by a shared secret or a signature instead of a key (gateway/remediation.py).
    own_schemes = {"/v2/webhooks/playbooks/{playbook_id}/trigger": "webhookSecret",
                   "/v2/slack/interactions": "slackSignature"}
    for path, method, operation in _operations(spec):
        if path in PUBLIC_PATHS:
            assert operation.get("security") == [], (method, path)
        elif path in own_schemes:
            assert operation["security"] == [{own_schemes[path]: []}], (method, path)
            assert own_schemes[path] in spec["components"]["securitySchemes"]
        else:
            assert "security" not in operation, (method, path)  # the document's default: a key
    assert set(PUBLIC_PATHS) <= set(spec["paths"])


def test_every_integer_has_a_documented_range(spec):
    checked = 0
    for path, method, operation in _operations(spec):
        schemas = [p["schema"] for p in operation.get("parameters", [])]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body:
            schemas.append(body)
        for schema in schemas:
            for integer in _integer_schemas(schema):
                if integer.get("enum") == [0, 1]:
                    continue
                assert "minimum" in integer, (method, path, integer)
                checked += 1
    assert checked > 40


def test_limits_and_required_fields_are_in_the_schema(spec):
    paths = spec["paths"]
    register = paths["/service"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert register["required"] == ["heartbeat_name", "service_name"]
    assert register["properties"]["alert_interval_seconds"] | {} == {
        "type": "integer", "minimum": 1, "maximum": 31_536_000, "nullable": True,
        "description": register["properties"]["alert_interval_seconds"]["description"]}
    assert register["properties"]["threshold"]["maximum"] == 1000
    assert register["properties"]["heartbeat_name"]["maxLength"] == 255
    assert register["properties"]["heartbeat_name"]["minLength"] == 1
    update = paths["/service/{heartbeat_name}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    alerts = {p["name"]: p["schema"] for p in paths["/alerts"]["get"]["parameters"]}
    assert (alerts["limit"]["minimum"], alerts["limit"]["maximum"]) == (0, 1000)
    assert "Link" in paths["/alerts"]["get"]["responses"]["200"]["headers"]

    team = paths["/v2/teams"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert team["required"] == ["name"]
    team_id = paths["/v2/teams/{team_id}"]["delete"]["parameters"][0]["schema"]
    assert (team_id["minimum"], team_id["maximum"]) == (1, 2**63 - 1)
    limits = paths["/v2/api-keys/{key_id}/rate-limits"]["put"]["requestBody"]["content"]["application/json"]
    assert limits["schema"]["properties"]["heartbeat_per_minute"]["maximum"] == 10_000_000
    target = paths["/v2/notification-targets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(target["required"]) == {"service_id", "type", "config"}
    key = paths["/v2/api-keys"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert key["properties"]["scopes"]["minItems"] == 1


def test_legacy_fields_are_documented_as_the_legacy_routes_read_them(spec):
    """Where a legacy route normalises a value (issue 17), the schema allows it; the
    upper limits are the contract's, in the legacy field's unit."""
    paths = spec["paths"]
    register = paths["/service"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    update = paths["/service/{heartbeat_name}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    update = update["properties"]
    # Below the minimum: normalised (threshold 1, 1 s), so no minimum of 1; the top is the contract's.
    assert register["alert_interval"]["maximum"] == 31_536_000 // 60 and register["alert_interval"]["minimum"] < 0
    assert update["alert_interval"]["maximum"] == 31_536_000 // 60 and update["alert_interval"]["minimum"] < 0
    assert register["threshold"]["maximum"] == update["threshold"]["maximum"] == 1000
    assert register["threshold"]["minimum"] < 0 and update["threshold"]["minimum"] < 0
    # Any priority text (unknown: p3); any integer flag in the original's range (0: false).
    assert "enum" not in register["priority"] and "enum" not in update["priority"]
    for flag in ("muted", "active", "down"):
        integer = next(o for o in update[flag]["anyOf"] if o.get("type") == "integer")
        assert "enum" not in integer and (integer["minimum"], integer["maximum"]) == (-(2**31), 2**31 - 1)
    # A blank status reads as UP.
    status = paths["/heartbeat"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "minLength" not in status["properties"]["status"]
    assert status["properties"]["status"]["maxLength"] == 64
    # maxCount: any text (what is not a count means 250).
    listing = {p["name"]: p["schema"] for p in paths["/heartbeat"]["get"]["parameters"]}
    assert listing["maxCount"] == {"type": "string"}
    # active: any integer or true/false, as the server's own expression reads it.
    for path in ("/alerts", "/service"):
        active = next(p["schema"] for p in paths[path]["get"]["parameters"] if p["name"] == "active")
        for accepted in ("0", "1", "2", "-1", "99999999999999999999", "true", "FALSE", ""):
            assert re.fullmatch(active["pattern"], accepted), accepted
        for refused in ("yes", "1.5", "0x1", "1_0"):
            assert not re.fullmatch(active["pattern"], refused), refused
    # A job signal uses a string run_id and ignores the rest of its body.
    signal = paths["/v2/heartbeat/{service_id}/start"]["post"]["requestBody"]
    assert signal["required"] is False
    assert {"not": {"type": "object"}} in signal["content"]["application/json"]["schema"]["anyOf"]


def test_out_of_range_integers_are_a_400_not_a_value_error():
    with pytest.raises(HttpError) as caught:
        protojson.fill(auth_pb2.RateLimitOverrides(), {"heartbeat_per_minute": 2**31})
    assert caught.value.status == 400 and "heartbeat_per_minute" in caught.value.message
    with pytest.raises(HttpError):
        protojson.fill(delivery_pb2.ListDeliveriesRequest(), {"service_id": 2**63})
    with pytest.raises(HttpError):
        protojson.fill(routing_pb2.CreateNotificationTargetRequest(), {"priority": -(2**31) - 1})
    assert protojson.fill(delivery_pb2.ListDeliveriesRequest(), {"service_id": 2**63 - 1}).service_id == 2**63 - 1


def test_contract_limits_name_the_field_that_breaks_them():
    ok = heartbeat_pb2.RegisterServiceRequest(heartbeat_name="a", service_name="b", alert_interval_seconds=60)
    assert contracts.limit_violation(ok) is None
    cases = {
        "alert_interval_seconds": dict(alert_interval_seconds=31_536_001),
        "threshold": dict(threshold=1001),
        "heartbeat_name": dict(heartbeat_name="  "),
        "service_name": dict(service_name="x" * 256),
    }
    for field, change in cases.items():
        request = heartbeat_pb2.RegisterServiceRequest()
        request.CopyFrom(ok)
        for name, value in change.items():
            setattr(request, name, value)
        assert field in contracts.limit_violation(request)
    # An unset optional field is not checked; a set one is.
    assert contracts.limit_violation(heartbeat_pb2.UpdateServiceRequest(service_id=1)) is None
    assert "threshold" in contracts.limit_violation(heartbeat_pb2.UpdateServiceRequest(service_id=1, threshold=0))
    nested = auth_pb2.SetRateLimitsRequest(key_id="k", rate_limits=auth_pb2.RateLimitOverrides(heartbeat_per_minute=-1))
    assert contracts.limit_violation(nested) == "rate_limits.heartbeat_per_minute must be between 0 and 10000000"
    assert "scopes" in contracts.limit_violation(auth_pb2.CreateApiKeyRequest(name="k"))
    # The ingest hot path has nothing to check.
    assert contracts.limit_violation(heartbeat_pb2.RecordHeartbeatsRequest(
        heartbeats=[heartbeat_pb2.RecordHeartbeatRequest(heartbeat_name="a", status="UP")] * 3)) is None
