"""DeliveryService: converts protobuf <-> domain values and validates requests.

Errors are raised as ``medic.errors`` types; the shared interceptor maps them
to status codes. What the rows of an event are is ``planning.py``'s to say;
webhook URLs and headers follow ``medic.webhooks``. Secrets are returned once
(CreateWebhook) and never logged.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from medic import enums, tracing, webhooks
from medic.db import Row
from medic.errors import InvalidArgument, MedicError
from medic.quiet import ANNOUNCEMENTS
from medic.timestamps import to_timestamp
from medic.v1 import delivery_pb2, delivery_pb2_grpc, events_pb2
from services.delivery import metrics
from services.delivery.integrations import INTEGRATIONS, webhook
from services.delivery.model import TargetPlan, config_json
from services.delivery.outbox import OutboxStore
from services.delivery.planning import plan_deliveries
from services.delivery.subscriptions import SubscriptionStore

MAX_LISTED = 1000
MAX_BATCH = 256
DEFAULT_LISTED = 100



def _iso(ts: Timestamp, present: bool) -> str | None:
    if not present:
        return None
    return ts.ToDatetime(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")


# --- alert event -> domain -----------------------------------------------------
def event_to_domain(event: events_pb2.AlertEvent) -> dict[str, Any]:
    """The alert event as stored with each delivery and used to build payloads."""
    if not event.event_id or len(event.event_id) > 255:
        raise InvalidArgument("event.event_id is required (at most 255 characters)")
    if event.kind not in enums.ALERT_EVENT_KIND.names:
        raise InvalidArgument("event.kind must be TRIGGER, REMINDER, RESOLVE, ACKNOWLEDGE, WINDOW_STARTED or "
                              "WINDOW_ENDED")
    kind = enums.ALERT_EVENT_KIND.names[event.kind]
    announcement = kind in ANNOUNCEMENTS
    if announcement and (event.alert_id or event.window.window_id < 1):
        raise InvalidArgument("a window announcement has event.window (window_id >= 1) and no event.alert_id")
    if (not announcement and event.alert_id < 1) or event.service.service_id < 1:
        raise InvalidArgument("event.alert_id and event.service.service_id are required")
    s = event.service
    w = event.window
    return {
        # alert_id None: a window's announcement, of no alert.
        "event_id": event.event_id, "kind": kind, "alert_id": event.alert_id or None,
        "reason": enums.ALERT_REASON.names.get(event.reason, "unspecified"),
        "opened_at": _iso(event.opened_at, event.HasField("opened_at")),
        "closed_at": _iso(event.closed_at, event.HasField("closed_at")),
        "occurred_at": _iso(event.occurred_at, event.HasField("occurred_at")),
        "service": {
            "service_id": s.service_id, "heartbeat_name": s.heartbeat_name,
            "service_name": s.service_name, "team": s.team, "team_id": s.team_id or None,
            "priority": enums.PRIORITY.names.get(s.priority, "p3"), "runbook": s.runbook or None,
            "notify_mode": enums.NOTIFY_MODE.names.get(s.notify_mode, "all"),
            "last_heartbeat_at": _iso(s.last_heartbeat_at, s.HasField("last_heartbeat_at")),
            "alert_interval_seconds": s.alert_interval_seconds,
        },
        # The job run behind the alert (a failed, hung or too-fast run), or None.
        "run": ({"run_id": event.run.run_id or None, "status": event.run.status,
                 "output": event.run.output or None} if event.HasField("run") else None),
        # The maintenance window an announcement is about, or None.
        "window": ({"window_id": w.window_id, "reason": w.reason,
                    "starts_at": _iso(w.starts_at, w.HasField("starts_at")),
                    "ends_at": _iso(w.ends_at, w.HasField("ends_at"))} if announcement else None),
    }


def targets_to_domain(targets: list[delivery_pb2.PlannedTarget],
                      subscriptions: list[delivery_pb2.PlannedTarget]) -> list[TargetPlan]:
    """The targets, then the subscriptions, in the order given."""
    plans = []
    for position, (target, is_subscription) in enumerate(
            [(t, False) for t in targets] + [(s, True) for s in subscriptions]):
        target_type = enums.TARGET_TYPE.names.get(target.type)
        if target_type is None:
            raise InvalidArgument(f"target {position}: type must be one of "
                                  f"{', '.join(name.upper() for name in enums.TARGET_TYPE.numbers)}")
        plans.append(TargetPlan(
            target_type=target_type,
            config=json_format.MessageToDict(target.config) if target.HasField("config") else {},
            target_id=target.target_id or None, webhook_id=target.webhook_id or None,
            is_subscription=is_subscription))
    return plans


# --- rows -> protobuf ----------------------------------------------------------
def delivery_to_pb(row: Row) -> delivery_pb2.Delivery:
    destination = INTEGRATIONS[row["target_type"]].shown_destination(
        config_json(row["config"]), row["webhook_id"])
    return delivery_pb2.Delivery(
        delivery_id=row["delivery_id"], event_id=row["event_id"], kind=enums.ALERT_EVENT_KIND.numbers[row["kind"]],
        alert_id=row["alert_id"] or 0, service_id=row["service_id"],
        type=enums.TARGET_TYPE.numbers[row["target_type"]], target_id=row["target_id"] or 0,
        webhook_id=row["webhook_id"] or 0, destination=destination,
        mode=enums.NOTIFY_MODE.numbers[row["mode"]], position=row["position"],
        status=enums.DELIVERY_STATUS.numbers[row["status"]], idempotency_key=row["idempotency_key"],
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
    def __init__(self, outbox: OutboxStore, subscriptions: SubscriptionStore, *,
                 allow_private: bool, on_enqueued: Callable[[], None] = lambda: None):
        self.outbox = outbox
        self.subscriptions = subscriptions
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
                mode = enums.NOTIFY_MODE.names.get(request.mode)
                if mode is None:
                    raise InvalidArgument("mode must be NOTIFY_MODE_ALL or NOTIFY_MODE_UNTIL_SUCCESS")
                planned = plan_deliveries(event, mode, targets_to_domain(
                    list(request.targets), list(request.subscriptions)))
            except InvalidArgument as err:
                outcomes[index] = err
                continue
            valid.append((index, event, mode, planned))
        tracing.remember(*(event["event_id"] for _, event, _, _ in valid))  # continued by each attempt
        stored = self.outbox.enqueue_many([(e, m, p) for _, e, m, p in valid]) if valid else []
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
            status = enums.DELIVERY_STATUS.names.get(request.status)
            if status is None:
                raise InvalidArgument("unknown status")
        target_type = ""
        if request.type != delivery_pb2.TARGET_TYPE_UNSPECIFIED:
            target_type = enums.TARGET_TYPE.names.get(request.type)
            if target_type is None:
                raise InvalidArgument("unknown type")
        created_after = (request.created_after.ToDatetime(tzinfo=dt.timezone.utc)
                         if request.HasField("created_after") else None)
        rows = self.outbox.list_deliveries(
            alert_id=request.alert_id, service_id=request.service_id,
            target_id=request.target_id, webhook_id=request.webhook_id, status=status,
            target_type=target_type, created_after=created_after,
            limit=limit + 1, offset=request.offset)  # one past the page: is there another?
        return delivery_pb2.ListDeliveriesResponse(deliveries=[delivery_to_pb(r) for r in rows[:limit]],
                                                   has_more=len(rows) > limit)

    def RetryDelivery(self, request, context):
        if request.delivery_id < 1:
            raise InvalidArgument("delivery_id is required")
        row = self.outbox.retry_by_hand(request.delivery_id)
        self.on_enqueued()
        return delivery_pb2.RetryDeliveryResponse(delivery=delivery_to_pb(row))

    def CreateWebhook(self, request, context):
        url = webhooks.check_url(request.url, allow_private=self.allow_private)
        service_id = check_service_id(request.service_id) if request.HasField("service_id") else None
        headers = webhooks.check_headers(dict(request.headers))
        secret = check_secret(request.secret) if request.HasField("secret") else webhook.generate_secret()
        enabled = request.enabled if request.HasField("enabled") else True
        row = self.subscriptions.create_webhook(url, service_id, headers, secret, enabled)
        return delivery_pb2.CreateWebhookResponse(webhook=webhook_to_pb(row), secret=secret)

    def ListWebhooks(self, request, context):
        service_id = check_service_id(request.service_id) if request.HasField("service_id") else None
        rows = self.subscriptions.list_webhooks(service_id)
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
        row = self.subscriptions.update_webhook(
            request.webhook_id,
            url=(webhooks.check_url(request.url, allow_private=self.allow_private)
                 if request.HasField("url") else None),
            set_service=set_service, service_id=(request.service_id or None) if set_service else None,
            headers=(webhooks.check_headers(dict(request.headers.values))
                     if request.HasField("headers") else None),
            set_secret=set_secret, secret=secret,
            enabled=request.enabled if request.HasField("enabled") else None)
        return delivery_pb2.UpdateWebhookResponse(webhook=webhook_to_pb(row))

    def DeleteWebhook(self, request, context):
        if request.webhook_id < 1:
            raise InvalidArgument("webhook_id is required")
        self.subscriptions.delete_webhook(request.webhook_id)
        return delivery_pb2.DeleteWebhookResponse()

    def ListWebhooksForService(self, request, context):
        rows = self.subscriptions.list_webhooks_for_service(check_service_id(request.service_id))
        return delivery_pb2.ListWebhooksForServiceResponse(webhooks=[webhook_to_pb(r) for r in rows])

    def ListWebhooksForServices(self, request, context):
        check_batch(len(request.service_ids), "service_ids")
        service_ids = [check_service_id(service_id) for service_id in request.service_ids]
        per_service = self.subscriptions.list_webhooks_for_services(service_ids)
        return delivery_pb2.ListWebhooksForServicesResponse(services=[
            delivery_pb2.ServiceWebhooks(service_id=service_id, webhooks=[webhook_to_pb(r) for r in rows])
            for service_id, rows in zip(service_ids, per_service)])
