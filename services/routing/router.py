"""RouteAlert(s): gathers what selection needs, hands the plans to delivery, then
remembers each alert's route.

Order matters for durability: a plan is handed to delivery first and the
alert's route is written only once delivery accepted it, so a failure at any
step leaves nothing recorded as sent and the caller (the heartbeat service's
outbox) simply calls again. Delivery is idempotent on the event id, so a retry
after a lost reply enqueues nothing twice.

A batch costs one read transaction, one call to delivery for the webhook
subscriptions of all its services (made while routing reads), one call handing
delivery every plan, and one write transaction. Events of the same alert in one batch are routed one after the
other (a REMINDER must see the route its TRIGGER recorded).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from medic.errors import MedicError, Unavailable
from medic import enums
from medic.quiet import SkipReason
from medic.v1 import events_pb2
from services.routing import metrics
from services.routing import selection as rule
from services.routing.delivery_client import DeliveryClient, PlanToEnqueue
from services.routing.route_store import EventKeys, RouteStore, RouteToRemember, TargetSkip

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RouteRequest:
    event: events_pb2.AlertEvent
    kind: str
    mode_override: str | None


@dataclass(frozen=True)
class Refused:
    """A request of a batch that was invalid: its error is its outcome, and later
    events of its alert in the batch wait for it like after a failed routing.
    ``sequence``: its ``sequence_of``."""
    sequence: int | str
    error: MedicError


def sequence_of(event: events_pb2.AlertEvent) -> int | str:
    """What orders events: an alert's go one after the other; an announcement
    (no alert) waits for nothing."""
    return event.alert_id or event.event_id


@dataclass(frozen=True)
class Routed:
    plan: rule.RoutingPlan
    enqueued: bool


class Router:
    def __init__(self, store: RouteStore, delivery: DeliveryClient, default_channel: str):
        self.store = store
        self.delivery = delivery
        self.default_channel = default_channel

    def route_alert(self, event: events_pb2.AlertEvent, kind: str,
                    mode_override: str | None) -> tuple[rule.RoutingPlan, bool]:
        """(the plan, whether it was handed to delivery); raises what went wrong."""
        [outcome] = self.route_alerts([RouteRequest(event, kind, mode_override)])
        if isinstance(outcome, MedicError):
            raise outcome
        return outcome.plan, outcome.enqueued

    def route_alerts(self, requests: Sequence[RouteRequest | Refused]) -> list[Routed | MedicError]:
        """One outcome per request, in order: what was routed, or why not (the
        caller retries those). A database failure raises for the whole batch."""
        outcomes: list[Routed | MedicError | None] = [None] * len(requests)
        failed: set[int | str] = set()
        pending = list(range(len(requests)))
        while pending:  # rounds in which every alert appears at most once
            seen: set[int | str] = set()
            this_round, later = [], []
            for index in pending:
                request = requests[index]
                if isinstance(request, Refused):
                    outcomes[index] = request.error
                    failed.add(request.sequence)
                    continue
                sequence = sequence_of(request.event)
                if sequence in failed:  # never overtake an earlier event left unrouted
                    outcomes[index] = Unavailable(
                        f"an earlier event of alert {sequence} was not routed; send this one after it")
                    continue
                (later if sequence in seen else this_round).append(index)
                seen.add(sequence)
            if not this_round:
                break
            for index, outcome in zip(this_round, self._route_round([requests[i] for i in this_round])):
                outcomes[index] = outcome
                if isinstance(outcome, MedicError):
                    failed.add(sequence_of(requests[index].event))
            pending = later
        return outcomes  # type: ignore[return-value]

    def _route_round(self, requests: Sequence[RouteRequest]) -> list[Routed | MedicError]:
        # Delivery looks up the webhook subscriptions while routing reads its tables.
        subscriptions = self.delivery.subscriptions_future(
            sorted({r.event.service.service_id for r in requests}))
        inputs = self.store.routing_inputs([
            EventKeys(r.event.alert_id, r.event.service.service_id, r.event.service.team_id,
                      r.event.service.team) for r in requests])
        try:
            subscribed = subscriptions()
        except MedicError as err:
            return [err] * len(requests)

        plans = [rule.plan_route(
            kind=r.kind, targets=found.targets, team=found.team, default_channel=self.default_channel,
            subscriptions=subscribed.get(r.event.service.service_id, []) if r.kind != rule.ACKNOWLEDGE else (),
            service_mode=enums.NOTIFY_MODE.names.get(r.event.service.notify_mode),
            mode_override=r.mode_override, route=found.route, at=_occurred_at(r.event))
            for r, found in zip(requests, inputs)]
        to_send = [i for i, plan in enumerate(plans) if plan.has_recipients]
        errors: dict[int, MedicError] = {}
        if to_send:
            try:
                refused = self.delivery.enqueue_future([
                    PlanToEnqueue(requests[i].event, enums.NOTIFY_MODE.numbers[plans[i].mode], plans[i].targets,
                                  plans[i].subscriptions) for i in to_send])()
            except MedicError as err:
                refused = [err] * len(to_send)
            if len(refused) != len(to_send):  # an answer that does not match the question
                refused = [Unavailable(f"delivery answered {len(refused)} of {len(to_send)} plans")] \
                    * len(to_send)
            errors = {i: err for i, err in zip(to_send, refused) if err is not None}

        outcomes: list[Routed | MedicError] = []
        remember = []
        skips = []
        for index, (request, plan) in enumerate(zip(requests, plans)):
            if index in errors:
                outcomes.append(errors[index])
                continue
            outcomes.append(Routed(plan, plan.has_recipients))
            if request.kind in rule.ANNOUNCEMENTS:  # no alert: no route to follow, no skip to show on one
                continue
            if plan.source != rule.SOURCE_ALERT_ROUTE:
                remember.append(RouteToRemember(
                    alert_id=request.event.alert_id, service_id=request.event.service.service_id,
                    event_id=request.event.event_id, mode=plan.mode, targets=plan.route))
            skips += [TargetSkip(request.event.alert_id, request.event.event_id, request.kind, t.target_id,
                                 SkipReason.OUTSIDE_ACTIVE_HOURS) for t in plan.outside_hours]
        self.store.remember_routes(remember, skips)
        for request, outcome in zip(requests, outcomes):
            if isinstance(outcome, Routed):
                _report(request, outcome.plan)
        return outcomes


def _occurred_at(event: events_pb2.AlertEvent) -> dt.datetime | None:
    """When the event happened: working hours are judged by it, not by when routing runs."""
    return event.occurred_at.ToDatetime(dt.timezone.utc) if event.HasField("occurred_at") else None


def _report(request: RouteRequest, plan: rule.RoutingPlan) -> None:
    event, kind = request.event, request.kind
    metrics.ALERT_EVENTS_ROUTED.labels(kind, plan.source).inc()
    if kind in rule.ANNOUNCEMENTS:
        log.info("window %d %s announced to %d target(s) of service %d from %s (%d outside their working hours)",
                 event.window.window_id, kind, len(plan.targets), event.service.service_id, plan.source,
                 len(plan.outside_hours))
        return
    if plan.unrouted:
        metrics.ALERTS_UNROUTED.labels(kind).inc()
        log.warning("alert %d of service %d (%s) is unrouted: no enabled target, no team "
                    "channel, no default channel (%s event %s, %d subscription(s) told)",
                    event.alert_id, event.service.service_id, event.service.heartbeat_name, kind,
                    event.event_id, len(plan.subscriptions))
    else:
        log.info("alert %d %s routed to %d target(s) from %s, mode %s (%d outside their working hours)",
                 event.alert_id, kind, len(plan.targets), plan.source, plan.mode, len(plan.outside_hours))
