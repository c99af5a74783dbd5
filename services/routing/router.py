"""RouteAlert: gathers what selection needs, hands the plan to delivery, then
remembers the alert's route.

Order matters for durability: the plan is handed to delivery first and the
alert's route is written only once delivery accepted it, so a failure at any
step leaves nothing recorded as sent and the caller (the heartbeat service's
outbox) simply calls again. Delivery is idempotent on the event id, so a retry
after a lost reply enqueues nothing twice.
"""
from __future__ import annotations

import logging

from medic.v1 import common_pb2, events_pb2
from services.routing import metrics
from services.routing import selection as rule
from services.routing.delivery_client import DeliveryClient
from services.routing.store import RoutingStore

log = logging.getLogger(__name__)

MODE_TO_PB = {rule.NOTIFY_ALL: common_pb2.NOTIFY_MODE_ALL,
              rule.NOTIFY_UNTIL_SUCCESS: common_pb2.NOTIFY_MODE_UNTIL_SUCCESS}
MODE_FROM_PB = {v: k for k, v in MODE_TO_PB.items()}


class Router:
    def __init__(self, store: RoutingStore, delivery: DeliveryClient, default_channel: str):
        self.store = store
        self.delivery = delivery
        self.default_channel = default_channel

    def route_alert(self, event: events_pb2.AlertEvent, kind: str,
                    mode_override: str | None) -> tuple[rule.RoutingPlan, bool]:
        """(the plan, whether it was handed to delivery)."""
        service = event.service
        # Delivery looks up the webhook subscriptions while this reads its tables.
        subscriptions = self.delivery.subscriptions_future(service.service_id)
        route, targets, team = self.store.routing_inputs(
            event.alert_id, service.service_id, service.team_id, service.team)
        plan = rule.plan_route(
            kind=kind, targets=targets, team=team, default_channel=self.default_channel,
            subscriptions=subscriptions(),
            service_mode=MODE_FROM_PB.get(service.notify_mode), mode_override=mode_override,
            route=route)
        enqueued = plan.has_recipients
        if enqueued:
            self.delivery.enqueue(event, MODE_TO_PB[plan.mode], plan.targets, plan.subscriptions)
        if plan.source != rule.SOURCE_ALERT_ROUTE:
            self.store.remember_route(alert_id=event.alert_id, service_id=service.service_id,
                                      event_id=event.event_id, mode=plan.mode,
                                      targets=plan.targets)
        metrics.ALERT_EVENTS_ROUTED.labels(kind, plan.source).inc()
        if plan.unrouted:
            metrics.ALERTS_UNROUTED.labels(kind).inc()
            log.warning("alert %d of service %d (%s) is unrouted: no enabled target, no team "
                        "channel, no default channel (%s event %s, %d subscription(s) told)",
                        event.alert_id, service.service_id, service.heartbeat_name, kind,
                        event.event_id, len(plan.subscriptions))
        else:
            log.info("alert %d %s routed to %d target(s) from %s, mode %s",
                     event.alert_id, kind, len(plan.targets), plan.source, plan.mode)
        return plan, enqueued
