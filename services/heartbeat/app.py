"""Assembles the heartbeat service process: store, group-commit ingest, servicer."""
from __future__ import annotations

from medic.config import Settings
from medic.db import Database
from medic.server import Component
from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc
from services.heartbeat.ingest import IngestQueue
from services.heartbeat.servicer import HeartbeatServicer
from services.heartbeat.store import HeartbeatStore

SERVICE_NAME = heartbeat_pb2.DESCRIPTOR.services_by_name["HeartbeatService"].full_name


def build(settings: Settings, db: Database | None = None) -> Component:
    owns_db = db is None
    if owns_db:
        db = Database(settings.database_url, settings.db_pool_size, application_name="medic-heartbeat")
    store = HeartbeatStore(db)
    ingest = IngestQueue(store, batch_max=settings.ingest_batch_max, writers=settings.ingest_writers)
    servicer = HeartbeatServicer(store, ingest)
    return Component(
        name="heartbeat",
        servicers=[(heartbeat_pb2_grpc.add_HeartbeatServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_start=[ingest.start],
        on_stop=[lambda grace: ingest.stop(grace), *([lambda grace: db.close()] if owns_db else [])],
    )
