"""Assembles the routing service process: store, delivery client, router, servicer."""
from __future__ import annotations

import grpc

from medic import authz
from medic.config import Settings
from medic.db import Database
from medic.interceptors import service_channel
from medic.server import Component
from medic.v1 import routing_pb2, routing_pb2_grpc
from services.routing.delivery_client import DeliveryClient
from services.routing.router import Router
from services.routing.servicer import RoutingServicer
from services.routing.store import RoutingStore

SERVICE_NAME = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name


def delivery_channel(settings: Settings,
                     credential_metadata: tuple[tuple[str, str], ...] = ()) -> grpc.Channel:
    """A channel to every delivery replica (a DNS name resolving to several is
    balanced round-robin), carrying the request id and this process's credential."""
    return service_channel(settings.target("delivery"), credential_metadata)


def build(settings: Settings, db: Database | None = None) -> Component:
    # A database passed in belongs to the caller (tests), who closes it.
    owns_db = db is None
    db = db or Database(settings.database_url, settings.db_pool_size,
                        application_name="medic-routing")
    store = RoutingStore(db)
    channel = delivery_channel(settings, authz.service_credential_metadata(settings))
    router = Router(store, DeliveryClient(channel, settings.rpc_timeout_seconds),
                    settings.slack_default_channel)
    servicer = RoutingServicer(store, router, allow_private_webhooks=settings.webhook_allow_private)
    return Component(
        name="routing",
        servicers=[(routing_pb2_grpc.add_RoutingServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_stop=[lambda grace: channel.close(),
                 *([lambda grace: db.close()] if owns_db else [])],
    )
