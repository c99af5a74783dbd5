"""Planning: the outbox rows of one alert event (pure).

Targets come in routing's order, then the webhook subscriptions. Under
``until_success`` the targets form a chain: only the first is due at once, the
next one becomes due when the one before it fails for good, and a success skips
the rest. Subscriptions are never chained: each is sent. What a row is keyed by
(its destination, its idempotency key) is the integration's to say.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medic.errors import InvalidArgument
from medic.quiet import ANNOUNCEMENTS
from services.delivery.integrations import INTEGRATIONS
from services.delivery.model import PlannedDelivery, TargetPlan


def plan_deliveries(event: dict[str, Any], mode: str,
                    targets: Sequence[TargetPlan]) -> list[PlannedDelivery]:
    """Rows for one event, one per target in order; InvalidArgument naming the
    target when its type is unknown or its config lacks the destination."""
    chained = mode == "until_success"
    planned = []
    for position, target in enumerate(targets):
        integration = INTEGRATIONS.get(target.target_type)
        if integration is None:
            raise InvalidArgument(f"target {position}: unknown type {target.target_type!r}")
        if event["kind"] in ANNOUNCEMENTS and not integration.announced_to:
            raise InvalidArgument(f"target {position}: {target.target_type} is not sent window announcements")
        if not integration.has_destination(target.config, target.webhook_id):
            raise InvalidArgument(
                f"target {position}: config.{integration.destination_field} is required")
        in_chain = chained and not target.is_subscription
        planned.append(PlannedDelivery(
            position=position, target_type=target.target_type, target_id=target.target_id,
            webhook_id=target.webhook_id, in_chain=in_chain, config=target.config,
            destination_key=integration.destination_key(target.config, target.webhook_id),
            idempotency_key=integration.idempotency_key(event, position),
            due_now=not in_chain or position == 0))
    return planned
