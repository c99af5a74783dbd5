"""Assembles the delivery service process: stores, senders, workers, servicer."""
from __future__ import annotations

import logging

from medic.config import Settings
from medic.db import Database
from medic.server import Component
from medic.v1 import delivery_pb2, delivery_pb2_grpc
from services.delivery import integrations
from services.delivery.outbox import OutboxStore
from services.delivery.servicer import DeliveryServicer
from services.delivery.subscriptions import SubscriptionStore
from services.delivery.worker import DeliveryWorkers, WorkerSettings

SERVICE_NAME = delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name

log = logging.getLogger(__name__)


def build_workers(settings: Settings, outbox: OutboxStore) -> DeliveryWorkers:
    timeout = settings.delivery_http_timeout_seconds
    if settings.delivery_lease_seconds <= timeout:
        log.warning("MEDIC_DELIVERY_LEASE_SECONDS (%g) <= HTTP timeout (%g): a slow receiver's "
                    "delivery may be sent twice", settings.delivery_lease_seconds, timeout)
    return DeliveryWorkers(outbox, integrations.senders(settings), WorkerSettings(
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
    subscriptions = SubscriptionStore(db)
    outbox = OutboxStore(db, subscriptions)
    workers = build_workers(settings, outbox)
    servicer = DeliveryServicer(outbox, subscriptions, allow_private=settings.webhook_allow_private,
                                on_enqueued=workers.wake)
    return Component(
        name="delivery",
        servicers=[(delivery_pb2_grpc.add_DeliveryServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_start=[workers.start],
        on_stop=[workers.stop] + ([lambda grace: db.close()] if owned else []),
    )
