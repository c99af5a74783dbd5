"""Routing's calls to DeliveryService: the webhook subscriptions of a service and
the hand-off of a plan. Any failure of delivery becomes ``Unavailable``: the
caller of RouteAlert retries, and nothing is recorded as sent meanwhile."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import struct_pb2

from medic import enums
from medic.errors import InvalidArgument, MedicError, Unavailable
from medic.v1 import delivery_pb2, delivery_pb2_grpc, events_pb2
from services.routing.selection import WEBHOOK, PlannedTarget

log = logging.getLogger(__name__)



def struct(config: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(config))
    return out


def planned_to_pb(target: PlannedTarget) -> delivery_pb2.PlannedTarget:
    return delivery_pb2.PlannedTarget(type=enums.TARGET_TYPE.numbers[target.type], target_id=target.target_id,
                                      webhook_id=target.webhook_id, config=struct(target.config))


def subscription_from_webhook(webhook: delivery_pb2.Webhook) -> PlannedTarget:
    config: dict[str, Any] = {"url": webhook.url}
    if webhook.headers:
        config["headers"] = dict(webhook.headers)
    return PlannedTarget(type=WEBHOOK, config=config, webhook_id=webhook.webhook_id)


class DeliveryClient:
    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        self.timeout = timeout

    def _start(self, what: str, method, request) -> Callable[[], Any]:
        """Starts a call; the returned function waits for its response, any failure
        of delivery raised as ``Unavailable``."""
        call = method.future(request, timeout=self.timeout)

        def result():
            try:
                return call.result()
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else None
                name = code.name if code else "UNKNOWN"
                log.warning("delivery %s failed: %s", what, name)
                raise Unavailable(f"delivery service could not {what} ({name})") from None

        return result

    def subscriptions_future(self, service_ids: Sequence[int]
                             ) -> Callable[[], dict[int, list[PlannedTarget]]]:
        """Starts asking for the enabled webhook subscriptions of the services (each
        service's own and the global ones); the returned function waits for them."""
        response = self._start("list webhook subscriptions", self.stub.ListWebhooksForServices,
                               delivery_pb2.ListWebhooksForServicesRequest(service_ids=service_ids))
        return lambda: {s.service_id: [subscription_from_webhook(w) for w in s.webhooks if w.enabled]
                        for s in response().services}

    def enqueue_future(self, plans: Sequence[PlanToEnqueue]) -> Callable[[], list[MedicError | None]]:
        """Starts handing plans to delivery in one call; the returned function waits
        and says, per plan, None when delivery accepted it, else the error."""
        request = delivery_pb2.EnqueueNotificationsBatchRequest(requests=[
            delivery_pb2.EnqueueNotificationsRequest(
                event=p.event, mode=p.mode, targets=[planned_to_pb(t) for t in p.targets],
                subscriptions=[planned_to_pb(s) for s in p.subscriptions]) for p in plans])
        response = self._start("enqueue notifications", self.stub.EnqueueNotificationsBatch, request)

        def accepted() -> list[MedicError | None]:
            return [None if r.code == 0 else
                    InvalidArgument(f"delivery refused the plan: {r.message}")
                    if r.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] else
                    Unavailable(f"delivery could not enqueue the plan: {r.message}")
                    for r in response().results]

        return accepted


@dataclass(frozen=True)
class PlanToEnqueue:
    event: events_pb2.AlertEvent
    mode: int
    targets: tuple[PlannedTarget, ...]
    subscriptions: tuple[PlannedTarget, ...]
