"""Every change writes exactly one audit event, with who made it and what it was
before and after: a table of every audited RPC, checked against the contracts.

The RPCs come from the ``.proto`` files: a method that needs the write or admin
scope must declare an audit rule (``option (audit)``), and each one declared
AUDIT_RULE_RECORDED must have a case here. So a new mutating RPC fails this
test until it declares its rule and, when it records, until a case shows its
one event (docs/architecture.md, "The audit log").
"""
from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from medic import contracts
from medic.v1 import (auth_pb2, auth_pb2_grpc, delivery_pb2, delivery_pb2_grpc, heartbeat_pb2,
                      heartbeat_pb2_grpc, options_pb2, remediation_pb2, remediation_pb2_grpc, routing_pb2,
                      routing_pb2_grpc)
from tests.support.auth import bearer

ACTOR = "alice@example.com (on-call)"
SECRET = "whsec_" + base64.b64encode(b"never-in-the-log-never-in-the-lo").decode()
SECRET2 = "whsec_" + base64.b64encode(b"another-secret-another-secret-an").decode()
ROUTING_KEY = "R0UT1NGK3Y-never-in-the-log"
HEADER_TOKEN = "Bearer h3ad3r-never-in-the-log"
STEP_SECRET = "st3p-s3cret-never-in-the-log"

_names = itertools.count(1)


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


class World:
    """Stubs on the whole stack (auth enforced), called with an admin key and an actor."""

    def __init__(self, stack, db):
        self.db = db
        self.channels = {name: grpc.insecure_channel(f"127.0.0.1:{server.port}")
                         for name, server in stack.servers.items()}
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channels["auth"])
        self.heartbeat = heartbeat_pb2_grpc.HeartbeatServiceStub(self.channels["heartbeat"])
        self.routing = routing_pb2_grpc.RoutingServiceStub(self.channels["routing"])
        self.delivery = delivery_pb2_grpc.DeliveryServiceStub(self.channels["delivery"])
        self.remediation = remediation_pb2_grpc.RemediationServiceStub(self.channels["remediation"])
        self.admin_key = stack.admin_key
        self.admin_key_id = stack.admin_key.split("_")[1]
        self.md = (*bearer(stack.admin_key), ("x-medic-actor", ACTOR))

    def close(self):
        for channel in self.channels.values():
            channel.close()

    def service(self) -> heartbeat_pb2.Service:
        name = _name("svc")
        return self.heartbeat.RegisterService(heartbeat_pb2.RegisterServiceRequest(
            heartbeat_name=name, service_name=name, alert_interval_seconds=60), metadata=self.md).service

    def muted_snapshot(self) -> int:
        """A service muted once: the id of the snapshot taken before the mute."""
        svc = self.service()
        self.heartbeat.UpdateService(heartbeat_pb2.UpdateServiceRequest(service_id=svc.service_id, muted=True),
                                     metadata=self.md)
        [snapshot] = self.heartbeat.ListSnapshots(heartbeat_pb2.ListSnapshotsRequest(service_id=svc.service_id),
                                                  metadata=self.md).snapshots
        return snapshot.snapshot_id

    def bulk_muted(self) -> tuple[int, str]:
        svc = self.service()
        bulk = self.heartbeat.BulkUpdateServices(heartbeat_pb2.BulkUpdateServicesRequest(
            service_ids=[svc.service_id], muted=True), metadata=self.md)
        return svc.service_id, bulk.bulk_id

    def open_alert(self) -> int:
        """A service marked down by hand: its open alert's id."""
        svc = self.service()
        self.heartbeat.UpdateService(heartbeat_pb2.UpdateServiceRequest(service_id=svc.service_id, down=True),
                                     metadata=self.md)
        alerts = self.heartbeat.ListAlerts(heartbeat_pb2.ListAlertsRequest(active=True), metadata=self.md).alerts
        return next(a.alert_id for a in alerts if a.service_id == svc.service_id)

    def muted_service(self) -> heartbeat_pb2.Service:
        svc = self.service()
        self.heartbeat.MuteService(heartbeat_pb2.MuteServiceRequest(service_id=svc.service_id, reason="deploy"),
                                   metadata=self.md)
        return svc

    def window(self) -> int:
        return self.heartbeat.CreateMaintenanceWindow(heartbeat_pb2.CreateMaintenanceWindowRequest(
            window=_window_spec()), metadata=self.md).window.window_id

    def team(self) -> routing_pb2.Team:
        return self.routing.CreateTeam(routing_pb2.CreateTeamRequest(name=_name("team")), metadata=self.md).team

    def target(self) -> routing_pb2.NotificationTarget:
        config = struct_pb2.Struct()
        config.update({"routing_key": ROUTING_KEY})
        return self.routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=self.service().service_id, type=delivery_pb2.TARGET_TYPE_PAGERDUTY, config=config),
            metadata=self.md).target

    def webhook(self) -> delivery_pb2.Webhook:
        return self.delivery.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/hook", headers={"Authorization": HEADER_TOKEN}, secret=SECRET),
            metadata=self.md).webhook

    def api_key(self) -> str:
        return self.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
            name=_name("key"), scopes=[options_pb2.SCOPE_READ]), metadata=self.md).api_key.key_id

    def failed_delivery(self) -> int:
        service_id = self.service().service_id
        return self.db.one("""
            INSERT INTO deliveries (event_id, position, kind, alert_id, service_id, target_type, mode,
                                    config, event, destination_key, idempotency_key, status, attempts)
            VALUES (%s, 0, 'trigger', 1, %s, 'webhook', 'all', '{"url": "http://127.0.0.1:9/"}', '{}',
                    '127.0.0.1:9', %s, 'failed', 3)
            RETURNING delivery_id""", (_name("event"), service_id, _name("idem")))["delivery_id"]

    def playbook(self, approval: str = "none") -> int:
        """A playbook whose first step waits an hour: nothing after the call
        under test writes an event (a step's start is not one)."""
        return self.remediation.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(
            yaml=_playbook(_name("fix"), approval)), metadata=self.md).playbook_id

    def waiting_execution(self) -> int:
        return self.remediation.ExecutePlaybook(remediation_pb2.ExecutePlaybookRequest(
            playbook_id=self.playbook()), metadata=self.md).execution_id

    def pending_execution(self) -> int:
        """An execution waiting for approval, once its request is recorded."""
        execution_id = self.remediation.ExecutePlaybook(remediation_pb2.ExecutePlaybookRequest(
            playbook_id=self.playbook("required")), metadata=self.md).execution_id
        deadline = time.monotonic() + 10
        while not self.db.one("SELECT 1 FROM audit_events WHERE execution_id = %s AND action_type = "
                              "'approval_requested'", (execution_id,)):
            assert time.monotonic() < deadline, "the engine never requested approval"
            time.sleep(0.05)
        return execution_id

    def secret(self) -> str:
        name = _name("token").replace("-", "_")
        self.remediation.PutSecret(remediation_pb2.PutSecretRequest(name=name, value=STEP_SECRET),
                                   metadata=self.md)
        return name

    def events(self) -> list[dict]:
        return self.db.all("SELECT * FROM audit_events ORDER BY event_id")


@dataclass(frozen=True)
class Case:
    """``prepare`` makes what the call changes; ``call`` changes it, returning the
    resource id the event must name."""
    resource: str
    action_type: str
    call: Callable[[World, Any], Any]
    prepare: Callable[[World], Any] = lambda world: None
    has_before: bool = True
    has_after: bool = True
    changed: dict = field(default_factory=dict)  # after[field] expected


def _struct(values: dict) -> struct_pb2.Struct:
    config = struct_pb2.Struct()
    config.update(values)
    return config


def _playbook(name: str, approval: str = "none", description: str = "restart") -> str:
    return f"""
name: {name}
description: {description}
approval: {approval}
steps:
  - name: pause
    type: wait
    duration: 1h
  - name: call
    type: webhook
    url: http://127.0.0.1:9/fix
    headers:
      Authorization: "{HEADER_TOKEN}"
      X-Token: "${{secrets.api_token}}"
"""


def _window_spec(reason: str = "upgrade") -> heartbeat_pb2.MaintenanceWindowSpec:
    spec = heartbeat_pb2.MaintenanceWindowSpec(scope=heartbeat_pb2.WINDOW_SCOPE_ALL, reason=reason)
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    spec.starts_at.FromDatetime(start)
    spec.ends_at.FromDatetime(start + dt.timedelta(hours=2))
    return spec


def _decision(action: str, rpc: str, status: str, *, pending: bool) -> Case:
    """A person's decision on an execution (waiting for approval, or waiting in a step)."""
    request = getattr(remediation_pb2, f"{rpc}Request")
    return Case("execution", action, changed={"status": status},
                prepare=lambda w: w.pending_execution() if pending else w.waiting_execution(),
                call=lambda w, execution_id: getattr(w.remediation, rpc)(
                    request(execution_id=execution_id), metadata=w.md).execution.execution_id)


def _deletion(resource: str, rpc: str, key: str, prepare: Callable[[World], Any]) -> Case:
    request = getattr(remediation_pb2, f"{rpc}Request")
    return Case(resource, "delete", has_after=False, prepare=prepare,
                call=lambda w, value: (getattr(w.remediation, rpc)(request(**{key: value}), metadata=w.md), value)[1])


HB = "/medic.v1.HeartbeatService/"
AUTH = "/medic.v1.AuthService/"
ROUTING = "/medic.v1.RoutingService/"
DELIVERY = "/medic.v1.DeliveryService/"
REMEDIATION = "/medic.v1.RemediationService/"

CASES: dict[str, Case] = {
    HB + "RegisterService": Case(
        "service", "register", has_before=False,
        call=lambda w, _: w.heartbeat.RegisterService(heartbeat_pb2.RegisterServiceRequest(
            heartbeat_name="fresh", service_name="fresh", alert_interval_seconds=60),
            metadata=w.md).service.service_id),
    HB + "UpdateService": Case(
        "service", "mute", prepare=lambda w: w.service(),
        call=lambda w, svc: w.heartbeat.UpdateService(heartbeat_pb2.UpdateServiceRequest(
            service_id=svc.service_id, muted=True), metadata=w.md).service.service_id,
        changed={"muted": True}),
    HB + "DeleteService": Case(
        "service", "delete", has_after=False, prepare=lambda w: w.service(),
        call=lambda w, svc: (w.heartbeat.DeleteService(heartbeat_pb2.DeleteServiceRequest(
            service_id=svc.service_id), metadata=w.md), svc.service_id)[1]),
    HB + "RestoreSnapshot": Case(
        "service", "restore", prepare=lambda w: w.muted_snapshot(),
        call=lambda w, snapshot_id: w.heartbeat.RestoreSnapshot(heartbeat_pb2.RestoreSnapshotRequest(
            snapshot_id=snapshot_id), metadata=w.md).service.service_id,
        changed={"muted": False}),
    HB + "BulkUpdateServices": Case(
        "service", "bulk_edit", prepare=lambda w: w.service(),
        call=lambda w, svc: (w.heartbeat.BulkUpdateServices(heartbeat_pb2.BulkUpdateServicesRequest(
            service_ids=[svc.service_id], muted=True), metadata=w.md), svc.service_id)[1],
        changed={"muted": True}),
    HB + "UndoBulkChange": Case(
        "service", "restore", prepare=lambda w: w.bulk_muted(),
        call=lambda w, bulk: (w.heartbeat.UndoBulkChange(heartbeat_pb2.UndoBulkChangeRequest(
            bulk_id=bulk[1]), metadata=w.md), bulk[0])[1],
        changed={"muted": False}),
    HB + "AcknowledgeAlert": Case(
        "alert", "acknowledge", prepare=lambda w: w.open_alert(),
        call=lambda w, alert_id: w.heartbeat.AcknowledgeAlert(heartbeat_pb2.AcknowledgeAlertRequest(
            alert_id=alert_id), metadata=w.md).alert.alert_id),
    HB + "MuteService": Case(
        "service", "mute", prepare=lambda w: w.service(),
        call=lambda w, svc: w.heartbeat.MuteService(heartbeat_pb2.MuteServiceRequest(
            service_id=svc.service_id, reason="deploy"), metadata=w.md).service.service_id,
        changed={"muted": True, "mute_reason": "deploy"}),
    HB + "UnmuteService": Case(
        "service", "unmute", prepare=lambda w: w.muted_service(),
        call=lambda w, svc: w.heartbeat.UnmuteService(heartbeat_pb2.UnmuteServiceRequest(
            service_id=svc.service_id), metadata=w.md).service.service_id,
        changed={"muted": False}),
    HB + "CreateMaintenanceWindow": Case(
        "maintenance_window", "create", has_before=False,
        call=lambda w, _: w.heartbeat.CreateMaintenanceWindow(heartbeat_pb2.CreateMaintenanceWindowRequest(
            window=_window_spec()), metadata=w.md).window.window_id,
        changed={"reason": "upgrade"}),
    HB + "UpdateMaintenanceWindow": Case(
        "maintenance_window", "update", prepare=lambda w: w.window(),
        call=lambda w, window_id: w.heartbeat.UpdateMaintenanceWindow(heartbeat_pb2.UpdateMaintenanceWindowRequest(
            window_id=window_id, window=_window_spec("longer")), metadata=w.md).window.window_id,
        changed={"reason": "longer"}),
    HB + "DeleteMaintenanceWindow": Case(
        "maintenance_window", "delete", has_after=False, prepare=lambda w: w.window(),
        call=lambda w, window_id: (w.heartbeat.DeleteMaintenanceWindow(heartbeat_pb2.DeleteMaintenanceWindowRequest(
            window_id=window_id), metadata=w.md), window_id)[1]),
    AUTH + "CreateApiKey": Case(
        "api_key", "create", has_before=False,
        call=lambda w, _: w.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
            name="ci", scopes=[options_pb2.SCOPE_WRITE]), metadata=w.md).api_key.key_id),
    AUTH + "RevokeApiKey": Case(
        "api_key", "revoke", prepare=lambda w: w.api_key(),
        call=lambda w, key_id: w.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key_id),
                                                   metadata=w.md).api_key.key_id),
    AUTH + "SetRateLimits": Case(
        "api_key", "set_rate_limits", prepare=lambda w: w.api_key(),
        call=lambda w, key_id: w.auth.SetRateLimits(auth_pb2.SetRateLimitsRequest(
            key_id=key_id, rate_limits=auth_pb2.RateLimitOverrides(management_per_minute=7)),
            metadata=w.md).api_key.key_id,
        changed={"management_per_minute": 7}),
    ROUTING + "CreateTeam": Case(
        "team", "create", has_before=False,
        call=lambda w, _: w.routing.CreateTeam(routing_pb2.CreateTeamRequest(name="payments"),
                                               metadata=w.md).team.team_id),
    ROUTING + "UpdateTeam": Case(
        "team", "update", prepare=lambda w: w.team(),
        call=lambda w, team: w.routing.UpdateTeam(routing_pb2.UpdateTeamRequest(
            team_id=team.team_id, slack_channel_id="C0NEW"), metadata=w.md).team.team_id,
        changed={"slack_channel_id": "C0NEW"}),
    ROUTING + "DeleteTeam": Case(
        "team", "delete", has_after=False, prepare=lambda w: w.team(),
        call=lambda w, team: (w.routing.DeleteTeam(routing_pb2.DeleteTeamRequest(team_id=team.team_id),
                                                   metadata=w.md), team.team_id)[1]),
    ROUTING + "CreateNotificationTarget": Case(
        "notification_target", "create", has_before=False, prepare=lambda w: w.service(),
        call=lambda w, svc: w.routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=svc.service_id, type=delivery_pb2.TARGET_TYPE_PAGERDUTY,
            config=_struct({"routing_key": ROUTING_KEY})), metadata=w.md).target.target_id,
        changed={"config": {"routing_key": "changed"}}),
    ROUTING + "UpdateNotificationTarget": Case(
        "notification_target", "update", prepare=lambda w: w.target(),
        call=lambda w, target: w.routing.UpdateNotificationTarget(routing_pb2.UpdateNotificationTargetRequest(
            target_id=target.target_id, type=delivery_pb2.TARGET_TYPE_PAGERDUTY,
            config=_struct({"routing_key": ROUTING_KEY + "-2"})), metadata=w.md).target.target_id,
        changed={"config": {"routing_key": "changed"}}),
    ROUTING + "DeleteNotificationTarget": Case(
        "notification_target", "delete", has_after=False, prepare=lambda w: w.target(),
        call=lambda w, target: (w.routing.DeleteNotificationTarget(routing_pb2.DeleteNotificationTargetRequest(
            target_id=target.target_id), metadata=w.md), target.target_id)[1]),
    DELIVERY + "CreateWebhook": Case(
        "webhook", "create", has_before=False,
        call=lambda w, _: w.delivery.CreateWebhook(delivery_pb2.CreateWebhookRequest(
            url="http://127.0.0.1:9/new", headers={"Authorization": HEADER_TOKEN}, secret=SECRET),
            metadata=w.md).webhook.webhook_id,
        changed={"secret": "changed", "headers": "changed"}),
    DELIVERY + "UpdateWebhook": Case(
        "webhook", "update", prepare=lambda w: w.webhook(),
        call=lambda w, hook: w.delivery.UpdateWebhook(delivery_pb2.UpdateWebhookRequest(
            webhook_id=hook.webhook_id, secret=SECRET2, enabled=False), metadata=w.md).webhook.webhook_id,
        changed={"secret": "changed", "enabled": False}),
    DELIVERY + "DeleteWebhook": Case(
        "webhook", "delete", has_after=False, prepare=lambda w: w.webhook(),
        call=lambda w, hook: (w.delivery.DeleteWebhook(delivery_pb2.DeleteWebhookRequest(
            webhook_id=hook.webhook_id), metadata=w.md), hook.webhook_id)[1]),
    DELIVERY + "RetryDelivery": Case(
        "delivery", "retry", prepare=lambda w: w.failed_delivery(),
        call=lambda w, delivery_id: w.delivery.RetryDelivery(delivery_pb2.RetryDeliveryRequest(
            delivery_id=delivery_id), metadata=w.md).delivery.delivery_id,
        changed={"status": "pending"}),
    # The header values and the secret's value show only as "changed".
    REMEDIATION + "CreatePlaybook": Case(
        "playbook", "create", has_before=False,
        call=lambda w, _: w.remediation.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(
            yaml=_playbook("restart-web")), metadata=w.md).playbook_id,
        changed={"name": "restart-web", "step_header_values": "changed"}),
    REMEDIATION + "UpdatePlaybook": Case(
        "playbook", "update", prepare=lambda w: w.playbook(),
        call=lambda w, playbook_id: w.remediation.UpdatePlaybook(remediation_pb2.UpdatePlaybookRequest(
            playbook_id=playbook_id, yaml=_playbook("renamed", description="restart, then check")),
            metadata=w.md).playbook.playbook_id,
        changed={"name": "renamed", "description": "restart, then check"}),
    REMEDIATION + "ApplyPlaybook": Case(
        "playbook", "create", has_before=False,
        call=lambda w, _: w.remediation.ApplyPlaybook(remediation_pb2.ApplyPlaybookRequest(
            yaml=_playbook("applied")), metadata=w.md).playbook_id,
        changed={"name": "applied"}),
    REMEDIATION + "DeletePlaybook": _deletion("playbook", "DeletePlaybook", "playbook_id", lambda w: w.playbook()),
    REMEDIATION + "ExecutePlaybook": Case(
        "execution", "execution_started", has_before=False, prepare=lambda w: w.playbook(),
        call=lambda w, playbook_id: w.remediation.ExecutePlaybook(remediation_pb2.ExecutePlaybookRequest(
            playbook_id=playbook_id), metadata=w.md).execution_id,
        changed={"trigger": "api", "status": "running"}),
    REMEDIATION + "TriggerPlaybook": Case(
        "execution", "execution_started", has_before=False, prepare=lambda w: w.playbook(),
        call=lambda w, playbook_id: w.remediation.TriggerPlaybook(remediation_pb2.TriggerPlaybookRequest(
            playbook_id=playbook_id, source_ip="203.0.113.7"), metadata=w.md).execution_id,
        changed={"trigger": "webhook", "variables": {"SOURCE_IP": "203.0.113.7"}}),
    REMEDIATION + "ApproveExecution": _decision("approved", "ApproveExecution", "running", pending=True),
    REMEDIATION + "RejectExecution": _decision("rejected", "RejectExecution", "rejected", pending=True),
    REMEDIATION + "CancelExecution": _decision("cancelled", "CancelExecution", "cancelled", pending=False),
    REMEDIATION + "PutSecret": Case(
        "secret", "create", has_before=False,
        call=lambda w, _: w.remediation.PutSecret(remediation_pb2.PutSecretRequest(
            name="api_token", value=STEP_SECRET), metadata=w.md).secret.name,
        changed={"value": "changed"}),
    REMEDIATION + "DeleteSecret": _deletion("secret", "DeleteSecret", "name", lambda w: w.secret()),
}


def test_every_write_or_admin_rpc_declares_an_audit_rule():
    undeclared = [m for m, p in contracts.policies().items()
                  if p.changes_state and p.audit == options_pb2.AUDIT_RULE_UNSPECIFIED]
    assert undeclared == [], (
        "these RPCs need the write or admin scope but declare no `option (audit)`: "
        f"{undeclared} (docs/architecture.md, 'The audit log')")


def test_every_recorded_rpc_has_a_case_here():
    recorded = {m for m, p in contracts.policies().items() if p.audited}
    assert recorded - set(CASES) == set(), "audited RPCs without a case in CASES"
    assert set(CASES) - recorded == set(), "cases for RPCs not declared AUDIT_RULE_RECORDED"


@pytest.fixture
def world(stack, db):
    w = World(stack, db)
    yield w
    w.close()


@pytest.mark.parametrize("method", sorted(m for m, p in contracts.policies().items() if p.audited))
def test_each_change_writes_exactly_one_event_with_actor_before_and_after(world, method):
    case = CASES[method]
    prepared = case.prepare(world)
    before = world.events()
    resource_id = case.call(world, prepared)
    new = world.events()[len(before):]

    assert len(new) == 1, f"{method} wrote {len(new)} audit events"
    event = new[0]
    assert (event["resource"], event["resource_id"], event["action_type"]) == (
        case.resource, str(resource_id), case.action_type)
    assert (event["key_id"], event["actor"]) == (world.admin_key_id, ACTOR)
    assert event["key_name"] and event["principal"] == f"key:{world.admin_key_id}"
    assert event["request_id"]
    assert (event["before"] is not None, event["after"] is not None) == (case.has_before, case.has_after)
    for name, value in case.changed.items():
        assert event["after"][name] == value if not isinstance(value, dict) else \
            {k: event["after"][name][k] for k in value} == value
    text = json.dumps(event, default=str)
    for secret in (SECRET, SECRET2, ROUTING_KEY, ROUTING_KEY + "-2", HEADER_TOKEN, STEP_SECRET, world.admin_key):
        assert secret not in text


def test_a_failed_change_writes_no_event(world):
    svc = world.service()
    before = len(world.events())
    failures = [
        lambda: world.heartbeat.UpdateService(heartbeat_pb2.UpdateServiceRequest(
            service_id=svc.service_id, threshold=0), metadata=world.md),           # invalid
        lambda: world.heartbeat.DeleteService(heartbeat_pb2.DeleteServiceRequest(
            service_id=987654), metadata=world.md),                                # unknown
        lambda: world.routing.UpdateTeam(routing_pb2.UpdateTeamRequest(
            team_id=987654, name="x"), metadata=world.md),                          # unknown
        lambda: world.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(
            key_id=world.admin_key_id), metadata=world.md),                         # last admin key
        lambda: world.delivery.RetryDelivery(delivery_pb2.RetryDeliveryRequest(
            delivery_id=987654), metadata=world.md),                                # unknown
        lambda: world.remediation.CreatePlaybook(remediation_pb2.CreatePlaybookRequest(
            yaml="name: broken\nsteps: []\n"), metadata=world.md),                 # invalid
        lambda: world.remediation.ApproveExecution(remediation_pb2.ApproveExecutionRequest(
            execution_id=987654), metadata=world.md),                               # unknown
        lambda: world.remediation.DeleteSecret(remediation_pb2.DeleteSecretRequest(
            name="nothing_here"), metadata=world.md),                               # unknown
    ]
    for fail in failures:
        with pytest.raises(grpc.RpcError):
            fail()
    assert len(world.events()) == before


def test_a_change_whose_event_cannot_be_written_does_not_commit(world, db):
    """The event is in the change's transaction: when it cannot be written, the
    change is rolled back too."""
    svc = world.service()
    db.execute("ALTER TABLE audit_events ADD CONSTRAINT no_more_events CHECK (false) NOT VALID")
    with pytest.raises(grpc.RpcError) as failure:
        world.heartbeat.UpdateService(heartbeat_pb2.UpdateServiceRequest(
            service_id=svc.service_id, muted=True), metadata=world.md)
    assert failure.value.code() != grpc.StatusCode.OK
    db.execute("ALTER TABLE audit_events DROP CONSTRAINT no_more_events")
    after = world.heartbeat.GetService(heartbeat_pb2.GetServiceRequest(service_id=svc.service_id),
                                       metadata=world.md).service
    assert after.muted is False


@pytest.mark.parametrize("given, recorded", [
    ("bob", "bob"),
    ("x" * 255, "x" * 255),
    ("x" * 256, None),                 # too long: ignored
])
def test_the_actor_is_recorded_when_printable_and_short_enough(world, given, recorded):
    md = (*bearer(world.admin_key), ("x-medic-actor", given))
    world.routing.CreateTeam(routing_pb2.CreateTeamRequest(name=_name("team")), metadata=md)
    assert world.events()[-1]["actor"] == recorded
