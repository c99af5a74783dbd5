"""Assembles the routing service process: stores, delivery client, router, servicer."""
from __future__ import annotations

from medic import authz
from medic.config import Settings
from medic.db import Database
from medic.interceptors import service_channel
from medic.server import Component
from medic.v1 import routing_pb2, routing_pb2_grpc
from services.routing.delivery_client import DeliveryClient
from services.routing.router import Router
from services.routing.route_store import RouteStore
from services.routing.servicer import RoutingServicer
from services.routing.target_store import TargetStore
from services.routing.team_store import TeamStore

SERVICE_NAME = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name


def build(settings: Settings, db: Database | None = None) -> Component:
    # A database passed in belongs to the caller (tests), who closes it.
    owns_db = db is None
    db = db or Database(settings.database_url, settings.db_pool_size,
                        application_name="medic-routing")
    # A channel to every delivery replica (a DNS name resolving to several is
    # balanced round-robin), carrying the request id and this process's credential.
    channel = service_channel(settings.target("delivery"), authz.service_credential_metadata(settings))
    router = Router(RouteStore(db), DeliveryClient(channel, settings.rpc_timeout_seconds),
                    settings.slack_default_channel)
    servicer = RoutingServicer(TeamStore(db), TargetStore(db), router,
                               allow_private_webhooks=settings.webhook_allow_private)
    return Component(
        name="routing",
        servicers=[(routing_pb2_grpc.add_RoutingServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_stop=[lambda grace: channel.close(),
                 *([lambda grace: db.close()] if owns_db else [])],
    )
