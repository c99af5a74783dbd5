"""Assembles the delivery service process: store, senders, workers, servicer."""
from __future__ import annotations

import logging

from medic.config import Settings
from medic.db import Database
from medic.server import Component
from medic.v1 import delivery_pb2, delivery_pb2_grpc
from services.delivery.pagerduty import PagerDutySender
from services.delivery.servicer import DeliveryServicer
from services.delivery.slack import SlackSender
from services.delivery.store import DeliveryStore
from services.delivery.webhook import WebhookSender
from services.delivery.worker import DeliveryWorkers, WorkerSettings

SERVICE_NAME = delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name

log = logging.getLogger(__name__)


def build_workers(settings: Settings, store: DeliveryStore) -> DeliveryWorkers:
    timeout = settings.delivery_http_timeout_seconds
    if settings.delivery_lease_seconds <= timeout:
        log.warning("MEDIC_DELIVERY_LEASE_SECONDS (%g) <= HTTP timeout (%g): a slow receiver's "
                    "delivery may be sent twice", settings.delivery_lease_seconds, timeout)
    if not settings.slack_token:
        log.warning("MEDIC_SLACK_TOKEN is not set: Slack deliveries will fail (not_authed)")
    senders = {
        "slack": SlackSender(settings.slack_api_url, settings.slack_token, timeout),
        "pagerduty": PagerDutySender(settings.pagerduty_events_url, timeout),
        "webhook": WebhookSender(timeout, settings.webhook_allow_private),
    }
    return DeliveryWorkers(store, senders, WorkerSettings(
        workers=settings.delivery_workers, per_destination=settings.delivery_per_destination,
        lease_seconds=settings.delivery_lease_seconds, poll_seconds=settings.delivery_poll_seconds,
        retry_delays=settings.delivery_retry_delays,
        retry_after_cap=settings.delivery_retry_after_cap_seconds))


def build(settings: Settings, db: Database | None = None) -> Component:
    # A database passed in belongs to the caller (tests); one made here is closed on stop.
    owned = db is None
    # Each sending thread may hold a connection briefly to record its attempt.
    db = db or Database(settings.database_url,
                        max(settings.db_pool_size, min(settings.delivery_workers, 32) // 2 + 2),
                        application_name="medic-delivery")
    store = DeliveryStore(db)
    workers = build_workers(settings, store)
    servicer = DeliveryServicer(store, allow_private=settings.webhook_allow_private,
                                on_enqueued=workers.wake)
    return Component(
        name="delivery",
        servicers=[(delivery_pb2_grpc.add_DeliveryServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_start=[workers.start],
        on_stop=[workers.stop] + ([lambda grace: db.close()] if owned else []),
    )
