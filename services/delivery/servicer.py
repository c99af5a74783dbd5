"""DeliveryService: converts protobuf <-> domain values and validates requests.

Errors are raised as ``medic.errors`` types; the shared interceptor maps them
to status codes. Secrets are returned once (CreateWebhook) and never logged.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from medic import ssrf, tracing
from medic.db import Row
from medic.errors import InvalidArgument, MedicError
from medic.timestamps import to_timestamp
from medic.v1 import common_pb2, delivery_pb2, delivery_pb2_grpc, events_pb2, heartbeat_pb2
from services.delivery import metrics, pagerduty, webhook
from services.delivery.store import DeliveryStore, PlannedDelivery, config_json

MAX_LISTED = 1000
MAX_BATCH = 256
DEFAULT_LISTED = 100
MAX_URL_LENGTH = 2048
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

KIND_TO_DB = {events_pb2.ALERT_EVENT_KIND_TRIGGER: "trigger",
              events_pb2.ALERT_EVENT_KIND_REMINDER: "reminder",
              events_pb2.ALERT_EVENT_KIND_RESOLVE: "resolve"}
KIND_FROM_DB = {v: k for k, v in KIND_TO_DB.items()}
MODE_TO_DB = {common_pb2.NOTIFY_MODE_ALL: "all", common_pb2.NOTIFY_MODE_UNTIL_SUCCESS: "until_success"}
MODE_FROM_DB = {v: k for k, v in MODE_TO_DB.items()}
TYPE_TO_DB = {delivery_pb2.TARGET_TYPE_SLACK: "slack", delivery_pb2.TARGET_TYPE_PAGERDUTY: "pagerduty",
              delivery_pb2.TARGET_TYPE_WEBHOOK: "webhook"}
TYPE_FROM_DB = {v: k for k, v in TYPE_TO_DB.items()}
STATUS_TO_DB = {delivery_pb2.DELIVERY_STATUS_PENDING: "pending",
                delivery_pb2.DELIVERY_STATUS_RETRYING: "retrying",
                delivery_pb2.DELIVERY_STATUS_SUCCESS: "success",
                delivery_pb2.DELIVERY_STATUS_FAILED: "failed",
                delivery_pb2.DELIVERY_STATUS_SKIPPED: "skipped"}
STATUS_FROM_DB = {v: k for k, v in STATUS_TO_DB.items()}
PRIORITY_TO_DB = {common_pb2.PRIORITY_P1: "p1", common_pb2.PRIORITY_P2: "p2",
                  common_pb2.PRIORITY_P3: "p3", common_pb2.PRIORITY_P4: "p4",
                  common_pb2.PRIORITY_P5: "p5"}
REASON_TO_DB = {heartbeat_pb2.ALERT_REASON_MISSED_HEARTBEATS: "missed_heartbeats",
                heartbeat_pb2.ALERT_REASON_REPORTED_FAILURE: "reported_failure"}
REQUIRED_CONFIG = {"slack": "channel_id", "pagerduty": "routing_key", "webhook": "url"}


def _iso(ts: Timestamp, present: bool) -> str | None:
    if not present:
        return None
    return ts.ToDatetime(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")


# --- alert event -> domain -----------------------------------------------------
def event_to_domain(event: events_pb2.AlertEvent) -> dict[str, Any]:
    """The alert event as stored with each delivery and used to build payloads."""
    if not event.event_id or len(event.event_id) > 255:
        raise InvalidArgument("event.event_id is required (at most 255 characters)")
    if event.kind not in KIND_TO_DB:
        raise InvalidArgument("event.kind must be TRIGGER, REMINDER or RESOLVE")
    if event.alert_id < 1 or event.service.service_id < 1:
        raise InvalidArgument("event.alert_id and event.service.service_id are required")
    s = event.service
    return {
        "event_id": event.event_id, "kind": KIND_TO_DB[event.kind], "alert_id": event.alert_id,
        "reason": REASON_TO_DB.get(event.reason, "unspecified"),
        "opened_at": _iso(event.opened_at, event.HasField("opened_at")),
        "closed_at": _iso(event.closed_at, event.HasField("closed_at")),
        "occurred_at": _iso(event.occurred_at, event.HasField("occurred_at")),
        "service": {
            "service_id": s.service_id, "heartbeat_name": s.heartbeat_name,
            "service_name": s.service_name, "team": s.team, "team_id": s.team_id or None,
            "priority": PRIORITY_TO_DB.get(s.priority, "p3"), "runbook": s.runbook or None,
            "notify_mode": MODE_TO_DB.get(s.notify_mode, "all"),
            "last_heartbeat_at": _iso(s.last_heartbeat_at, s.HasField("last_heartbeat_at")),
            "alert_interval_seconds": s.alert_interval_seconds,
        },
    }


def destination_key(target_type: str, config: dict[str, Any], webhook_id: int | None) -> str:
    """What the per-destination concurrency limit counts: a host or a channel."""
    if target_type == "slack":
        return f"slack:{config['channel_id']}"
    if target_type == "pagerduty":
        return "pagerduty"
    url = config.get("url")
    if url:
        parts = urlsplit(url)
        return f"webhook:{parts.scheme}://{(parts.netloc.rsplit('@', 1)[-1]).lower()}"
    return f"webhook:#{webhook_id}"


def plan_deliveries(event: dict[str, Any], mode: str,
                    targets: list[delivery_pb2.PlannedTarget],
                    subscriptions: list[delivery_pb2.PlannedTarget]) -> list[PlannedDelivery]:
    """Rows for one event: targets in order (chained under until_success), then
    subscriptions (always all)."""
    chained = mode == "until_success"
    planned = []
    for position, (target, is_subscription) in enumerate(
            [(t, False) for t in targets] + [(s, True) for s in subscriptions]):
        target_type = TYPE_TO_DB.get(target.type)
        if target_type is None:
            raise InvalidArgument(f"target {position}: type must be SLACK, PAGERDUTY or WEBHOOK")
        config = json_format.MessageToDict(target.config) if target.HasField("config") else {}
        webhook_id = target.webhook_id or None
        required = REQUIRED_CONFIG[target_type]
        if not isinstance(config.get(required), str) or not config.get(required):
            if not (target_type == "webhook" and webhook_id):
                raise InvalidArgument(f"target {position}: config.{required} is required")
        in_chain = chained and not is_subscription
        first_of_chain = position == 0
        key = (pagerduty.dedup_key(event["alert_id"]) if target_type == "pagerduty"
               else f"{event['event_id']}.{position}")
        planned.append(PlannedDelivery(
            position=position, target_type=target_type, target_id=target.target_id or None,
            webhook_id=webhook_id, in_chain=in_chain, config=config,
            destination_key=destination_key(target_type, config, webhook_id),
            idempotency_key=key, due_now=not in_chain or first_of_chain))
    return planned


# --- rows -> protobuf ----------------------------------------------------------
def _shown_url(url: str) -> str:
    """A URL without query or credentials (they may hold tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


def delivery_to_pb(row: Row) -> delivery_pb2.Delivery:
    config = config_json(row["config"])
    if row["target_type"] == "slack":
        destination = config.get("channel_id", "")
    elif row["target_type"] == "pagerduty":
        destination = "pagerduty"
    else:
        destination = _shown_url(config["url"]) if config.get("url") else f"webhook #{row['webhook_id']}"
    return delivery_pb2.Delivery(
        delivery_id=row["delivery_id"], event_id=row["event_id"], kind=KIND_FROM_DB[row["kind"]],
        alert_id=row["alert_id"], service_id=row["service_id"],
        type=TYPE_FROM_DB[row["target_type"]], target_id=row["target_id"] or 0,
        webhook_id=row["webhook_id"] or 0, destination=destination,
        mode=MODE_FROM_DB[row["mode"]], position=row["position"],
        status=STATUS_FROM_DB[row["status"]], idempotency_key=row["idempotency_key"],
        attempts=row["attempts"], created_at=to_timestamp(row["created_at"]),
        next_attempt_at=to_timestamp(row["next_attempt_at"]), last_attempt_at=to_timestamp(row["last_attempt_at"]),
        last_response_code=row["last_response_code"] or 0,
        last_response_body=row["last_response_body"] or "", last_error=row["last_error"] or "",
        last_latency_ms=row["last_latency_ms"] or 0, updated_at=to_timestamp(row["updated_at"]))


def webhook_to_pb(row: Row) -> delivery_pb2.Webhook:
    pb = delivery_pb2.Webhook(
        webhook_id=row["webhook_id"], url=row["url"], headers=config_json(row["headers"]),
        enabled=row["enabled"], has_secret=bool(row["secret"]),
        created_at=to_timestamp(row["created_at"]), updated_at=to_timestamp(row["updated_at"]))
    if row["service_id"] is not None:
        pb.service_id = row["service_id"]
    return pb


# --- validation ------------------------------------------------------------------
def check_url(url: str, allow_private: bool) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"url is required (at most {MAX_URL_LENGTH} characters)")
    try:
        ssrf.check_destination(url, allow_private=allow_private)
    except ssrf.UnsafeDestination as exc:
        raise InvalidArgument(f"url refused: {exc}") from None
    return url


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not HEADER_NAME.match(name) or name.lower() in webhook.RESERVED_HEADERS:
            raise InvalidArgument(f"header {name!r} is not allowed")
        if "\r" in value or "\n" in value or len(value) > 4096:
            raise InvalidArgument(f"header {name!r} has an invalid value")
    return dict(headers)


def check_secret(secret: str) -> str:
    try:
        webhook.secret_key(secret)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    return secret


def check_batch(count: int, field: str) -> None:
    if not 1 <= count <= MAX_BATCH:
        raise InvalidArgument(f"{field} holds 1 to {MAX_BATCH} items, not {count}")


def check_service_id(service_id: int) -> int:
    if service_id < 1:
        raise InvalidArgument("service_id must be >= 1")
    return service_id


class DeliveryServicer(delivery_pb2_grpc.DeliveryServiceServicer):
    def __init__(self, store: DeliveryStore, *, allow_private: bool,
                 on_enqueued: Callable[[], None] = lambda: None):
        self.store = store
        self.allow_private = allow_private
        self.on_enqueued = on_enqueued

    def EnqueueNotifications(self, request, context):
        [result] = self._enqueue([request])
        if isinstance(result, MedicError):
            raise result
        return result

    def EnqueueNotificationsBatch(self, request, context):
        check_batch(len(request.requests), "requests")
        results = []
        for outcome in self._enqueue(list(request.requests)):
            if isinstance(outcome, MedicError):
                results.append(delivery_pb2.EnqueueNotificationsResult(
                    code=outcome.code.value[0], message=outcome.message))
            else:
                results.append(delivery_pb2.EnqueueNotificationsResult(response=outcome))
        return delivery_pb2.EnqueueNotificationsBatchResponse(results=results)

    def _enqueue(self, requests: list) -> list[delivery_pb2.EnqueueNotificationsResponse | MedicError]:
        outcomes: list = [None] * len(requests)
        valid = []  # (index, event, mode, planned)
        for index, request in enumerate(requests):
            try:
                event = event_to_domain(request.event)
                mode = MODE_TO_DB.get(request.mode)
                if mode is None:
                    raise InvalidArgument("mode must be NOTIFY_MODE_ALL or NOTIFY_MODE_UNTIL_SUCCESS")
                planned = plan_deliveries(event, mode, list(request.targets), list(request.subscriptions))
            except InvalidArgument as err:
                outcomes[index] = err
                continue
            valid.append((index, event, mode, planned))
        tracing.remember(*(event["event_id"] for _, event, _, _ in valid))  # continued by each attempt
        stored = self.store.enqueue_many([(e, m, p) for _, e, m, p in valid]) if valid else []
        created_any = False
        for (index, _, _, planned), (ids, created) in zip(valid, stored):
            if created:
                created_any = True
                for p in planned:
                    metrics.ENQUEUED.labels(p.target_type).inc()
            outcomes[index] = delivery_pb2.EnqueueNotificationsResponse(delivery_ids=ids, created=created)
        if created_any:
            self.on_enqueued()
        return outcomes

    def ListDeliveries(self, request, context):
        limit = request.limit or DEFAULT_LISTED
        if not 1 <= limit <= MAX_LISTED:
            raise InvalidArgument(f"limit must be 1-{MAX_LISTED}")
        status = ""
        if request.status != delivery_pb2.DELIVERY_STATUS_UNSPECIFIED:
            status = STATUS_TO_DB.get(request.status)
            if status is None:
                raise InvalidArgument("unknown status")
        rows = self.store.list_deliveries(
            alert_id=request.alert_id, service_id=request.service_id,
            target_id=request.target_id, webhook_id=request.webhook_id, status=status, limit=limit)
        return delivery_pb2.ListDeliveriesResponse(deliveries=[delivery_to_pb(r) for r in rows])

    def RetryDelivery(self, request, context):
        if request.delivery_id < 1:
            raise InvalidArgument("delivery_id is required")
        row = self.store.retry_by_hand(request.delivery_id)
        self.on_enqueued()
        return delivery_pb2.RetryDeliveryResponse(delivery=delivery_to_pb(row))

    def CreateWebhook(self, request, context):
        url = check_url(request.url, self.allow_private)
        service_id = check_service_id(request.service_id) if request.HasField("service_id") else None
        headers = check_headers(dict(request.headers))
        secret = check_secret(request.secret) if request.HasField("secret") else webhook.generate_secret()
        enabled = request.enabled if request.HasField("enabled") else True
        row = self.store.create_webhook(url, service_id, headers, secret, enabled)
        return delivery_pb2.CreateWebhookResponse(webhook=webhook_to_pb(row), secret=secret)

    def ListWebhooks(self, request, context):
        service_id = check_service_id(request.service_id) if request.HasField("service_id") else None
        rows = self.store.list_webhooks(service_id)
        return delivery_pb2.ListWebhooksResponse(webhooks=[webhook_to_pb(r) for r in rows])

    def UpdateWebhook(self, request, context):
        if request.webhook_id < 1:
            raise InvalidArgument("webhook_id is required")
        set_service = request.HasField("service_id")
        if set_service and request.service_id < 0:
            raise InvalidArgument("service_id must be >= 0 (0 = global)")
        set_secret = request.HasField("secret")
        # An empty secret removes it: deliveries go out unsigned from then on.
        secret = check_secret(request.secret) if set_secret and request.secret else None
        row = self.store.update_webhook(
            request.webhook_id,
            url=check_url(request.url, self.allow_private) if request.HasField("url") else None,
            set_service=set_service, service_id=(request.service_id or None) if set_service else None,
            headers=check_headers(dict(request.headers.values)) if request.HasField("headers") else None,
            set_secret=set_secret, secret=secret,
            enabled=request.enabled if request.HasField("enabled") else None)
        return delivery_pb2.UpdateWebhookResponse(webhook=webhook_to_pb(row))

    def DeleteWebhook(self, request, context):
        if request.webhook_id < 1:
            raise InvalidArgument("webhook_id is required")
        self.store.delete_webhook(request.webhook_id)
        return delivery_pb2.DeleteWebhookResponse()

    def ListWebhooksForService(self, request, context):
        rows = self.store.list_webhooks_for_service(check_service_id(request.service_id))
        return delivery_pb2.ListWebhooksForServiceResponse(webhooks=[webhook_to_pb(r) for r in rows])

    def ListWebhooksForServices(self, request, context):
        check_batch(len(request.service_ids), "service_ids")
        service_ids = [check_service_id(service_id) for service_id in request.service_ids]
        per_service = self.store.list_webhooks_for_services(service_ids)
        return delivery_pb2.ListWebhooksForServicesResponse(services=[
            delivery_pb2.ServiceWebhooks(service_id=service_id, webhooks=[webhook_to_pb(r) for r in rows])
            for service_id, rows in zip(service_ids, per_service)])
