"""Target selection as pure functions.

``plan_route`` decides who hears about one alert event, in what order and in
which mode; it reads nothing and sends nothing. Delivery carries the plan out.

Fallback chain, first level that yields a target wins:
1. the service's enabled notification targets, by priority (lower first; ties
   by target id so the order never depends on the database's row order);
   disabled ones are reported as skipped;
2. the team's Slack channel;
3. the default Slack channel (``MEDIC_SLACK_DEFAULT_CHANNEL``);
4. nothing: the event is unrouted (counted and logged by the caller).

Webhook subscriptions (for the service, and global ones) receive every event
whatever the mode and whatever the fallback level: they are not targets.

An alert's events stay together: once an event of an alert was routed to
targets (normally its TRIGGER), that choice is remembered as the alert's route
and its REMINDERs and RESOLVE go to the same targets, with the configs they had
then, even if the service's targets changed meanwhile.

A maintenance window's announcement (WINDOW_STARTED, WINDOW_ENDED) belongs to
no alert: it goes by the fallback chain to the service's targets, except
PagerDuty (an announcement is not an incident; ``NOT_ANNOUNCED_TO``), and to the
subscriptions, and is remembered as no route.

Working hours: a target with ``active_hours`` is sent a TRIGGER, REMINDER or
announcement only when the event happened within them (``in_hours``, deciding through
``medic.quiet``); the others are reported as outside their hours, and stay in
the alert's route for its later events. An acknowledgement goes to the route's
PagerDuty targets.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medic.quiet import ACKNOWLEDGE, ANNOUNCEMENTS, Quiet, decide_notification
from services.routing.active_hours import ActiveHours

# Target types (the notification_targets.type column).
SLACK = "slack"
PAGERDUTY = "pagerduty"
WEBHOOK = "webhook"
TARGET_TYPES = (SLACK, PAGERDUTY, WEBHOOK)

# Modes (services.notify_mode values).
NOTIFY_ALL = "all"
NOTIFY_UNTIL_SUCCESS = "until_success"
MODES = (NOTIFY_ALL, NOTIFY_UNTIL_SUCCESS)

# Event kinds.
TRIGGER = "trigger"
REMINDER = "reminder"
RESOLVE = "resolve"
# ACKNOWLEDGE (medic.quiet): only PagerDuty has an acknowledgement.
ACKNOWLEDGED_BY = (PAGERDUTY,)
# A maintenance window's announcements are information, never sent to PagerDuty.
NOT_ANNOUNCED_TO = (PAGERDUTY,)

# Where a plan's targets came from.
SOURCE_SERVICE_TARGETS = "service_targets"
SOURCE_TEAM_CHANNEL = "team_channel"
SOURCE_DEFAULT_CHANNEL = "default_channel"
SOURCE_ALERT_ROUTE = "alert_route"
SOURCE_UNROUTED = "unrouted"


@dataclass(frozen=True)
class NotificationTarget:
    target_id: int
    service_id: int
    type: str
    config: Mapping[str, Any]
    priority: int
    enabled: bool
    # Working hours; None: always active.
    active_hours: ActiveHours | None = None


@dataclass(frozen=True)
class Team:
    team_id: int
    name: str
    slack_channel_id: str | None


@dataclass(frozen=True)
class PlannedTarget:
    """One recipient of a plan. ``target_id`` 0: a fallback Slack channel;
    ``webhook_id`` set: a webhook subscription (owned by delivery)."""
    type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    target_id: int = 0
    webhook_id: int = 0
    active_hours: ActiveHours | None = None


@dataclass(frozen=True)
class AlertRoute:
    """What an alert's first routed event went to; later events follow it."""
    mode: str
    targets: tuple[PlannedTarget, ...]


@dataclass(frozen=True)
class RoutingPlan:
    mode: str
    source: str
    # Who is sent this event.
    targets: tuple[PlannedTarget, ...]
    skipped: tuple[NotificationTarget, ...] = ()
    subscriptions: tuple[PlannedTarget, ...] = ()
    # Targets of the route not sent this event: outside their working hours.
    outside_hours: tuple[PlannedTarget, ...] = ()
    # The alert's route (what later events follow): the targets, and those outside their hours now.
    route_targets: tuple[PlannedTarget, ...] | None = None

    @property
    def route(self) -> tuple[PlannedTarget, ...]:
        return self.targets if self.route_targets is None else self.route_targets

    @property
    def unrouted(self) -> bool:
        """No target at any fallback level (subscriptions may still be told)."""
        return not self.route

    @property
    def has_recipients(self) -> bool:
        return bool(self.targets or self.subscriptions)


def order_targets(targets: Iterable[NotificationTarget]
                  ) -> tuple[tuple[NotificationTarget, ...], tuple[NotificationTarget, ...]]:
    """(enabled targets by priority then id, disabled targets by the same order)."""
    ordered = sorted(targets, key=lambda t: (t.priority, t.target_id))
    return (tuple(t for t in ordered if t.enabled), tuple(t for t in ordered if not t.enabled))


def _slack_channel(channel_id: str | None) -> PlannedTarget | None:
    # An empty channel id counts as none (the original did the same).
    channel = (channel_id or "").strip()
    return PlannedTarget(type=SLACK, config={"channel_id": channel}) if channel else None


def choose_targets(targets: Iterable[NotificationTarget], team: Team | None,
                   default_channel: str
                   ) -> tuple[str, tuple[PlannedTarget, ...], tuple[NotificationTarget, ...]]:
    """(source, chosen targets, skipped disabled targets) by the fallback chain."""
    enabled, disabled = order_targets(targets)
    if enabled:
        chosen = tuple(PlannedTarget(type=t.type, config=dict(t.config), target_id=t.target_id,
                                     active_hours=t.active_hours) for t in enabled)
        return SOURCE_SERVICE_TARGETS, chosen, disabled
    team_channel = _slack_channel(team.slack_channel_id) if team else None
    if team_channel:
        return SOURCE_TEAM_CHANNEL, (team_channel,), disabled
    default = _slack_channel(default_channel)
    if default:
        return SOURCE_DEFAULT_CHANNEL, (default,), disabled
    return SOURCE_UNROUTED, (), disabled


def choose_mode(kind: str, override: str | None, service_mode: str | None,
                route: AlertRoute | None) -> str:
    """An explicit override wins. A RESOLVE goes to every target of the alert:
    under until-success a later target may hold the incident (the first one
    failed for the TRIGGER), and an incident left open is worse than a
    superfluous "resolved". Delivery then skips the RESOLVE to a target that got
    none of the alert's earlier events (each was skipped). Otherwise the alert's
    remembered mode, so that its reminders escalate like its TRIGGER did, else
    the service's mode."""
    if override:
        return override
    if kind == RESOLVE:
        return NOTIFY_ALL
    if route is not None:
        return route.mode
    return service_mode or NOTIFY_ALL


def in_hours(kind: str, targets: tuple[PlannedTarget, ...], at: dt.datetime | None
             ) -> tuple[tuple[PlannedTarget, ...], tuple[PlannedTarget, ...]]:
    """(targets sent an event of ``kind`` that happened ``at``, targets outside
    their working hours then), as ``medic.quiet`` decides. A RESOLVE or an
    acknowledgement goes whatever the hour (whoever was told must hear it ends);
    under until-success the chain simply starts at the first active target."""
    if at is None:
        return targets, ()
    active, outside = [], []
    for target in targets:
        hours = target.active_hours
        quiet = Quiet(outside_active_hours=hours is not None and not hours.active_at(at), alert_notified=True)
        (active if decide_notification(kind, quiet).send else outside).append(target)
    return tuple(active), tuple(outside)


def plan_route(*, kind: str, targets: Iterable[NotificationTarget], team: Team | None,
               default_channel: str, subscriptions: Iterable[PlannedTarget] = (),
               service_mode: str | None = None, mode_override: str | None = None,
               route: AlertRoute | None = None, at: dt.datetime | None = None) -> RoutingPlan:
    """The plan for one alert event that happened ``at``. ``route`` is the
    alert's remembered route, if an earlier event of the alert was routed to
    targets (never for an announcement). An acknowledgement goes to the route's
    PagerDuty targets only (and no subscription)."""
    if kind == ACKNOWLEDGE:
        remembered = route.targets if route is not None else ()
        return RoutingPlan(mode=NOTIFY_ALL, source=SOURCE_ALERT_ROUTE,
                           targets=tuple(t for t in remembered if t.type in ACKNOWLEDGED_BY),
                           route_targets=remembered)
    unique_subscriptions = {s.webhook_id: s for s in subscriptions}
    ordered_subscriptions = tuple(unique_subscriptions[k] for k in sorted(unique_subscriptions))
    mode = choose_mode(kind, mode_override, service_mode, route)
    if route is not None and route.targets:
        sent, outside = in_hours(kind, route.targets, at)
        return RoutingPlan(mode=mode, source=SOURCE_ALERT_ROUTE, targets=sent, outside_hours=outside,
                           route_targets=route.targets, subscriptions=ordered_subscriptions)
    source, chosen, skipped = choose_targets(targets, team, default_channel)
    if kind in ANNOUNCEMENTS:
        chosen = tuple(t for t in chosen if t.type not in NOT_ANNOUNCED_TO)
    sent, outside = in_hours(kind, chosen, at)
    return RoutingPlan(mode=mode, source=source, targets=sent, skipped=skipped, outside_hours=outside,
                       route_targets=chosen, subscriptions=ordered_subscriptions)
