"""The two remediation routes that take no API key, each authenticated its own way:

* ``POST /v2/webhooks/playbooks/<id>/trigger``: an outside system starts a
  playbook with the shared secret MEDIC_WEBHOOK_SECRET in ``X-Webhook-Secret``
  (compared in constant time), limited per client IP
  (MEDIC_RATE_LIMIT_WEBHOOK_TRIGGER_PER_MINUTE, 10, counted before the secret is
  checked, so guessing it is limited too). Messages as in the original Medic:
  401 "Missing X-Webhook-Secret header", 401 "Invalid webhook secret", 503
  "Webhook endpoint not configured".
* ``POST /v2/slack/interactions``: Slack's interactive buttons (Approve /
  Reject) of an approval request. The request is verified as Slack signs it
  (``v0=`` HMAC-SHA256 with MEDIC_SLACK_SIGNING_SECRET over
  ``v0:<X-Slack-Request-Timestamp>:<raw body>``), and its timestamp must be
  within 5 minutes of now; otherwise 401 "Invalid signature".

Both then call the remediation service with the gateway's credential and an
identity naming the caller (``webhook:<ip>``, ``slack:<user id>``), which the
execution's events record.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medic import ratelimit
from medic.authz import identity_metadata
from medic.interceptors import Identity
from medic.v1 import remediation_pb2, remediation_pb2_grpc
from gateway import protojson
from gateway.http import HttpError, envelope, from_rpc_error, ok

log = logging.getLogger(__name__)

SLACK_WINDOW_SECONDS = 300
TRIGGER_PATH = "/v2/webhooks/playbooks/{playbook_id:int}/trigger"
SLACK_PATH = "/v2/slack/interactions"
MAX_SLACK_BODY = 64 * 1024


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Slack sends in X-Slack-Signature for ``body``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_request_valid(secret: str, timestamp: str, body: bytes, signature: str, now: float) -> bool:
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > SLACK_WINDOW_SECONDS:
        return False
    return hmac.compare_digest(slack_signature(secret, timestamp, body).encode(), signature.encode())


def _execute_body(data: dict[str, Any]) -> tuple[int | None, dict]:
    """(service_id, variables) of the original's optional body; 400s with its messages."""
    service_id = data.get("service_id")
    if service_id is not None:
        if isinstance(service_id, bool):
            raise HttpError(400, "service_id must be an integer.")
        try:
            service_id = int(service_id)
        except (TypeError, ValueError):
            raise HttpError(400, "service_id must be an integer.") from None
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise HttpError(400, "variables must be a dictionary.")
    return service_id, variables


def routes(gw) -> list[Route]:
    stub: list[remediation_pb2_grpc.RemediationServiceStub] = []
    limiter = ratelimit.limiter_from_settings(gw.settings, asynchronous=True)

    def remediation() -> remediation_pb2_grpc.RemediationServiceStub:
        if not stub:  # channels exist only once the app has started
            stub.append(remediation_pb2_grpc.RemediationServiceStub(gw.channels["remediation"]))
        return stub[0]

    async def trigger(request: Request, decision) -> Response:
        settings = gw.settings
        if not settings.webhook_secret:
            return envelope(False, "Webhook endpoint not configured", "", 503)
        client_ip = request.client.host if request.client else "unknown"
        status = await limiter.acheck(ratelimit.bucket_name(f"ip:{client_ip}", "webhook_trigger"),
                                      settings.rate_limit_webhook_trigger_per_minute)
        if not status.allowed:
            raise HttpError(429, f"rate limit of {status.limit} playbook triggers per minute exceeded; "
                                 f"retry after {status.retry_after} s", headers=dict(status.headers()),
                            extra={"retry_after": status.retry_after})
        provided = request.headers.get("x-webhook-secret")
        if not provided:
            raise HttpError(401, "Missing X-Webhook-Secret header")
        if not hmac.compare_digest(provided.encode(), settings.webhook_secret.encode()):
            raise HttpError(401, "Invalid webhook secret")
        raw = await request.body()
        data: dict[str, Any] = {}
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError:
                raise HttpError(400, "Invalid JSON in request body.") from None
            if not isinstance(data, dict):
                raise HttpError(400, "Invalid JSON in request body.")
        service_id, variables = _execute_body(data)
        message = remediation_pb2.TriggerPlaybookRequest(playbook_id=request.path_params["playbook_id"],
                                                         source_ip=client_ip[:64])
        if service_id is not None:
            message.service_id = service_id
        protojson.fill(message, {"variables": variables})
        caller = Identity(principal=f"webhook:{client_ip}", scopes=frozenset({"admin"}), name="webhook")
        response = await remediation().TriggerPlaybook(message, metadata=identity_metadata(caller),
                                                       timeout=gw.rpc_timeout)
        return ok(protojson.to_json(response), "Playbook execution started successfully.", 201)

    async def slack(request: Request, decision) -> Response:
        secret = gw.settings.slack_signing_secret
        if not secret:
            return envelope(False, "Slack interactions are not configured (MEDIC_SLACK_SIGNING_SECRET)", "", 503)
        raw = await request.body()
        if len(raw) > MAX_SLACK_BODY:
            raise HttpError(413, f"Request body is larger than {MAX_SLACK_BODY} bytes.")
        if not slack_request_valid(secret, request.headers.get("x-slack-request-timestamp", ""), raw,
                                   request.headers.get("x-slack-signature", ""), time.time()):
            log.warning("Slack interaction refused: bad signature or timestamp")
            return Response(json.dumps({"success": False, "message": "Invalid signature"}), status_code=401,
                            media_type="application/json")
        try:
            payload = json.loads(parse_qs(raw.decode()).get("payload", [""])[0] or "null")
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return Response(json.dumps({"success": False, "message": "Missing payload"}), status_code=400,
                            media_type="application/json")
        outcome = await _slack_action(remediation(), payload, gw.rpc_timeout)
        if outcome is None:
            return Response(status_code=200)
        # Slack shows the text to the person who clicked, and wants a 200 even then.
        return Response(json.dumps({"response_type": "ephemeral", "text": f"Error: {outcome}"}), status_code=200,
                        media_type="application/json")

    return [gw.route("POST", TRIGGER_PATH, None, trigger), gw.route("POST", SLACK_PATH, None, slack)]


async def _slack_action(stub, payload: dict, timeout: float) -> str | None:
    """Approves or rejects as the button says; None on success, else what went wrong."""
    if payload.get("type") != "block_actions":
        return f"Unsupported interaction type: {payload.get('type')}"
    actions = payload.get("actions") or []
    if not actions or not isinstance(actions[0], dict):
        return "No actions in payload"
    action_id, value = actions[0].get("action_id"), actions[0].get("value")
    if action_id not in ("approve_playbook", "reject_playbook"):
        return f"Unknown action: {action_id}"
    try:
        execution_id = int(value)
        if execution_id < 1:
            raise ValueError
    except (TypeError, ValueError):
        return f"Invalid execution ID: {value}"
    user = (payload.get("user") or {}).get("id") or "unknown"
    caller = Identity(principal=f"slack:{user}"[:200], scopes=frozenset({"write"}), name=str(user)[:200])
    call = stub.ApproveExecution if action_id == "approve_playbook" else stub.RejectExecution
    request = (remediation_pb2.ApproveExecutionRequest if action_id == "approve_playbook"
               else remediation_pb2.RejectExecutionRequest)(execution_id=execution_id)
    try:
        await call(request, metadata=identity_metadata(caller), timeout=timeout)
    except grpc.RpcError as exc:
        return from_rpc_error(exc).message
    return None
