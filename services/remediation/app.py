"""Assembles the remediation service process: stores, the engine's workers, the
heartbeat client (service facts, condition steps) and the servicer."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from medic import authz
from medic.config import Settings
from medic.db import Database
from medic.interceptors import service_channel
from medic.server import Component
from medic.v1 import remediation_pb2, remediation_pb2_grpc
from services.remediation.breaker import BreakerPolicy
from services.remediation.engine import Engine, utc_now
from services.remediation.execution_store import ExecutionStore
from services.remediation.heartbeat_client import HeartbeatClient
from services.remediation.playbook_store import PlaybookStore
from services.remediation.remediation import TAKERS, Remediation
from services.remediation.scripts import ScriptRunner
from services.remediation.secrets import Keyring, SecretStore
from services.remediation.servicer import RemediationServicer
from services.remediation.slack import SlackApprovals
from services.remediation.steps import WebhookSender

SERVICE_NAME = remediation_pb2.DESCRIPTOR.services_by_name["RemediationService"].full_name


def build(settings: Settings, db: Database | None = None, *,
          clock: Callable[[], dt.datetime] = utc_now) -> Component:
    # A database passed in belongs to the caller (tests), who closes it.
    owns_db = db is None
    db = db or Database(settings.database_url, settings.db_pool_size + settings.remediation_workers + TAKERS,
                        application_name="medic-remediation")
    channel = service_channel(settings.target("heartbeat"), authz.service_credential_metadata(settings))
    heartbeat = HeartbeatClient(channel, settings.rpc_timeout_seconds)
    secrets = SecretStore(db, Keyring(settings.secrets_key, settings.secrets_previous_keys))
    executions = ExecutionStore(db, BreakerPolicy(settings.remediation_breaker_max_executions,
                                                  settings.remediation_breaker_window_seconds))
    playbooks = PlaybookStore(db)
    slack = SlackApprovals(settings.slack_api_url, settings.slack_token,
                           settings.slack_approval_channel or settings.slack_default_channel)
    engine = Engine(executions, WebhookSender(allow_private=settings.webhook_allow_private),
                    last_heartbeat=heartbeat.last_heartbeat, secret=secrets.value,
                    run_script=ScriptRunner(settings.remediation_scripts_dir).run,
                    post_approval=slack.post, announce_decision=slack.decided, clock=clock,
                    workers=settings.remediation_workers, poll_seconds=settings.remediation_poll_seconds,
                    condition_poll_seconds=settings.remediation_condition_poll_seconds)
    remediation = Remediation(db, playbooks, executions, heartbeat, clock=clock, wake=engine.wake)
    servicer = RemediationServicer(playbooks, executions, remediation, engine, secrets)
    return Component(
        name="remediation",
        servicers=[(remediation_pb2_grpc.add_RemediationServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_start=[engine.start],
        on_stop=[lambda grace: engine.stop(grace), lambda grace: remediation.close(),
                 lambda grace: channel.close(), *([lambda grace: db.close()] if owns_db else [])],
    )
