"""Assembles the heartbeat service process (stores, group-commit ingest,
servicer) and, unless ``MEDIC_MONITOR_ENABLED=false``, the monitor and the
hand-off to routing in the same process. ``build_monitor`` assembles a
stand-alone monitor process (``medic serve monitor``)."""
from __future__ import annotations

from medic import authz
from medic.config import Settings
from medic.db import Database
from medic.interceptors import service_channel
from medic.server import Component
from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc
from services.heartbeat import metrics
from services.heartbeat.alert_store import AlertStore, Changes
from services.heartbeat.handoff import Dispatcher
from services.heartbeat.heartbeat_store import HeartbeatStore
from services.heartbeat.ingest import IngestQueue
from services.heartbeat.lifecycle import LifecyclePolicy
from services.heartbeat.monitor import Monitor
from services.heartbeat.retention import Retention
from services.heartbeat.audit_log import AuditLog
from services.heartbeat.run_store import RunStore
from services.heartbeat.outbox_store import RemediationOutboxStore
from services.heartbeat.routing_client import (RemediationClient, RoutingClient, RoutingLookups,
                                               handle_alert_events_request)
from services.heartbeat.snapshots import SnapshotReader
from services.heartbeat.search import ServiceSearch
from services.heartbeat.service_store import ServiceStore
from services.heartbeat.servicer import HeartbeatServicer
from services.heartbeat.window_store import WindowStore

SERVICE_NAME = heartbeat_pb2.DESCRIPTOR.services_by_name["HeartbeatService"].full_name


def _database(settings: Settings, db: Database | None, name: str) -> tuple[Database, bool]:
    if db is not None:
        return db, False  # the caller's (tests): closed by the caller
    # RPC threads, ingest writers, the monitor and the hand-off workers share it.
    size = settings.db_pool_size + settings.ingest_writers + settings.handoff_workers + 3
    return Database(settings.database_url, size, application_name=f"medic-{name}"), True


class _Dispatchers:
    """The hand-offs to routing and to remediation, started, woken and stopped together."""

    def __init__(self, *dispatchers: Dispatcher):
        self.dispatchers = dispatchers

    def start(self) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.start()

    def wake(self) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.wake()

    def stop(self, grace: float) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.stop(grace)


class _Channels:
    def __init__(self, *channels):
        self.channels = channels

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def _alert_pipeline(settings: Settings, db: Database, policy: LifecyclePolicy, windows: WindowStore):
    """The monitor and the hand-off dispatchers, wired to each other."""
    # A channel to every routing replica (a DNS name resolving to several is
    # balanced round-robin), carrying the request id and this process's credential.
    credential = authz.service_credential_metadata(settings)
    channel = service_channel(settings.target("routing"), credential)
    routing = RoutingClient(channel, settings.rpc_timeout_seconds)
    remediation_channel = service_channel(settings.target("remediation"), credential)
    remediation = RemediationClient(remediation_channel, settings.rpc_timeout_seconds)
    dispatcher = _Dispatchers(
        Dispatcher(db, routing.route_alerts, workers=settings.handoff_workers,
                   lease_seconds=settings.handoff_lease_seconds, poll_seconds=settings.handoff_poll_seconds),
        # One worker: a claim of up to 128 events is one HandleAlertEvents call.
        Dispatcher(db, remediation.handle_alert_events, workers=1, batch=128,
                   lease_seconds=settings.handoff_lease_seconds, poll_seconds=settings.handoff_poll_seconds,
                   outbox=RemediationOutboxStore(db), build_request=handle_alert_events_request,
                   destination="remediation"))

    def committed(changes: Changes) -> None:
        for reason in changes.opened:
            metrics.ALERTS_OPENED.labels(reason).inc()
        for reason in changes.resolved:
            metrics.ALERTS_RESOLVED.labels(reason).inc()
        if changes.notifications:
            dispatcher.wake()

    monitor = Monitor(db, policy=policy, tick_seconds=settings.monitor_tick_seconds,
                      batch=settings.monitor_batch, mute_ttl_seconds=settings.mute_ttl_seconds,
                      on_committed=committed, windows=windows)
    return monitor, dispatcher, _Channels(channel, remediation_channel), committed


def _retention(settings: Settings, db: Database) -> Retention:
    """Deletes expired heartbeat events; runs wherever the monitor runs."""
    return Retention(db, retention_days=settings.heartbeat_retention_days,
                     interval_seconds=settings.retention_interval_seconds,
                     audit_retention_days=settings.audit_retention_days)


def build(settings: Settings, db: Database | None = None) -> Component:
    db, owns_db = _database(settings, db, "heartbeat")
    policy = LifecyclePolicy(reminder_min_seconds=settings.reminder_min_seconds)
    # One copy of the maintenance windows for the ingest, updates and the monitor.
    windows = WindowStore(db)
    monitor, dispatcher, channel, committed = _alert_pipeline(settings, db, policy, windows)
    heartbeats = HeartbeatStore(db, policy, on_committed=committed, windows=windows)
    ingest = IngestQueue(heartbeats, batch_max=settings.ingest_batch_max, writers=settings.ingest_writers)
    # A snapshot waits for routing at most 2 s: a change never hangs on a stuck routing.
    lookups = RoutingLookups(channel.channels[0], min(settings.rpc_timeout_seconds, 2.0))  # routing's
    servicer = HeartbeatServicer(ServiceStore(db, policy, on_committed=committed, windows=windows), heartbeats,
                                 AlertStore(db, policy), ingest, ServiceSearch(db), RunStore(db), windows,
                                 committed, audit=AuditLog(db), snapshot_reader=SnapshotReader(db), routing=lookups)
    on_start = [ingest.start]
    on_stop = [lambda grace: ingest.stop(grace)]
    if settings.monitor_enabled:
        retention = _retention(settings, db)
        on_start += [monitor.start, dispatcher.start, retention.start]
        on_stop = [lambda grace: monitor.stop(grace), lambda grace: dispatcher.stop(grace),
                   lambda grace: retention.stop(grace), *on_stop]
    on_stop += [lambda grace: channel.close(), *([lambda grace: db.close()] if owns_db else [])]
    return Component(
        name="heartbeat",
        servicers=[(heartbeat_pb2_grpc.add_HeartbeatServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_start=on_start,
        on_stop=on_stop,
    )


def build_monitor(settings: Settings, db: Database | None = None) -> Component:
    """A process with only the monitor and the hand-off (health is its one gRPC service)."""
    db, owns_db = _database(settings, db, "monitor")
    policy = LifecyclePolicy(reminder_min_seconds=settings.reminder_min_seconds)
    monitor, dispatcher, channel, _committed = _alert_pipeline(settings, db, policy, WindowStore(db))
    retention = _retention(settings, db)
    return Component(
        name="monitor",
        servicers=[],
        readiness={"database": db.ping},
        on_start=[monitor.start, dispatcher.start, retention.start],
        on_stop=[lambda grace: monitor.stop(grace), lambda grace: dispatcher.stop(grace),
                 lambda grace: retention.stop(grace),
                 lambda grace: channel.close(), *([lambda grace: db.close()] if owns_db else [])],
    )
