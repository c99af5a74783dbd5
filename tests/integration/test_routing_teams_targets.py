"""Teams and notification targets over real gRPC on a real PostgreSQL, and the
database's part: deleting a team keeps its services, deleting a service takes
its targets."""
from __future__ import annotations

import grpc
import pytest

from medic.v1 import delivery_pb2, routing_pb2
from tests.support.events import target_config as config
from tests.support.ports import free_port
from tests.support.routing import register_service


@pytest.fixture
def routing(routing_factory):
    # Managing teams and targets never calls delivery: no delivery server needed.
    return routing_factory(free_port())


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_team_lifecycle_with_case_insensitive_unique_names(routing):
    team = routing.CreateTeam(routing_pb2.CreateTeamRequest(
        name="Payments", slack_channel_id="C100")).team
    assert team.team_id > 0 and team.slack_channel_id == "C100"

    err = code_of(lambda: routing.CreateTeam(routing_pb2.CreateTeamRequest(name="payments")))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS

    by_name = routing.GetTeam(routing_pb2.GetTeamRequest(name="PAYMENTS")).team
    assert by_name.team_id == team.team_id

    cleared = routing.UpdateTeam(routing_pb2.UpdateTeamRequest(
        team_id=team.team_id, slack_channel_id="")).team
    assert cleared.slack_channel_id == "" and cleared.name == "Payments"

    routing.CreateTeam(routing_pb2.CreateTeamRequest(name="search"))
    names = [t.name for t in routing.ListTeams(routing_pb2.ListTeamsRequest()).teams]
    assert names == ["Payments", "search"]

    routing.DeleteTeam(routing_pb2.DeleteTeamRequest(team_id=team.team_id))
    err = code_of(lambda: routing.GetTeam(routing_pb2.GetTeamRequest(team_id=team.team_id)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_team_requests_are_validated(routing):
    for request in (routing_pb2.CreateTeamRequest(name="  "),
                    routing_pb2.CreateTeamRequest(name="x" * 256)):
        assert code_of(lambda: routing.CreateTeam(request)).code() == grpc.StatusCode.INVALID_ARGUMENT
    err = code_of(lambda: routing.GetTeam(routing_pb2.GetTeamRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = code_of(lambda: routing.DeleteTeam(routing_pb2.DeleteTeamRequest(team_id=999)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_deleting_a_team_keeps_its_services_and_clears_their_team(routing, heartbeats, db):
    team = routing.CreateTeam(routing_pb2.CreateTeamRequest(name="payments")).team
    service = register_service(heartbeats, "billing-job", team="payments")
    db.execute("UPDATE services SET team_id = %s WHERE service_id = %s",
               (team.team_id, service.service_id))

    routing.DeleteTeam(routing_pb2.DeleteTeamRequest(team_id=team.team_id))

    row = db.one("SELECT team_id, team FROM services WHERE service_id = %s", (service.service_id,))
    assert row == {"team_id": None, "team": "payments"}


def test_deleting_a_service_removes_its_targets(routing, heartbeats, db):
    kept = register_service(heartbeats, "kept")
    gone = register_service(heartbeats, "gone")
    for service in (kept, gone):
        routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK,
            config=config(channel_id="C1")))

    db.execute("DELETE FROM services WHERE service_id = %s", (gone.service_id,))

    targets = routing.ListNotificationTargets(routing_pb2.ListNotificationTargetsRequest()).targets
    assert [t.service_id for t in targets] == [kept.service_id]


def test_target_defaults_to_priority_zero_and_enabled(routing, heartbeats):
    service = register_service(heartbeats, "api")
    target = routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_WEBHOOK,
        config=config(url="https://93.184.216.34/a", headers={"X-Token": "t"}))).target
    assert target.priority == 0 and target.enabled
    assert dict(target.config["headers"]) == {"X-Token": "t"}


def test_bad_target_config_is_invalid_argument_naming_the_field(routing, heartbeats):
    service = register_service(heartbeats, "api")
    cases = [(delivery_pb2.TARGET_TYPE_SLACK, config(), "config.channel_id"),
             (delivery_pb2.TARGET_TYPE_PAGERDUTY, config(channel_id="C1"), "config.routing_key"),
             (delivery_pb2.TARGET_TYPE_WEBHOOK, config(url="ftp://x"), "config.url"),
             (delivery_pb2.TARGET_TYPE_UNSPECIFIED, config(channel_id="C1"), "type")]
    for target_type, cfg, field in cases:
        err = code_of(lambda: routing.CreateNotificationTarget(
            routing_pb2.CreateNotificationTargetRequest(
                service_id=service.service_id, type=target_type, config=cfg)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in err.details()


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest", "http://127.0.0.1:8080/hook", "http://localhost/hook",
    "http://10.0.0.1/hook?token=s3cret", "http://[::1]/hook", "https://hooks.invalid/hook"])
def test_webhook_target_to_a_non_public_or_unresolvable_destination_is_refused(routing, heartbeats, url):
    service = register_service(heartbeats, "api")
    request = routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_WEBHOOK, config=config(url=url))
    err = code_of(lambda: routing.CreateNotificationTarget(request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("config.url refused") and "s3cret" not in err.details()
    assert routing.ListNotificationTargets(routing_pb2.ListNotificationTargetsRequest()).targets == []


def test_webhook_target_cannot_be_changed_to_a_private_destination(routing, heartbeats):
    service = register_service(heartbeats, "api")

    def create(target_type, cfg):
        return routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=service.service_id, type=target_type, config=cfg)).target

    hook = create(delivery_pb2.TARGET_TYPE_WEBHOOK, config(url="https://93.184.216.34/a"))
    slack = create(delivery_pb2.TARGET_TYPE_SLACK, config(channel_id="C1"))
    for request in (
            routing_pb2.UpdateNotificationTargetRequest(
                target_id=hook.target_id, config=config(url="http://169.254.169.254/latest")),
            routing_pb2.UpdateNotificationTargetRequest(
                target_id=slack.target_id, type=delivery_pb2.TARGET_TYPE_WEBHOOK,
                config=config(url="http://10.0.0.1/"))):
        err = code_of(lambda: routing.UpdateNotificationTarget(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "config.url refused" in err.details()
    kept = routing.ListNotificationTargets(routing_pb2.ListNotificationTargetsRequest()).targets
    assert [dict(t.config) for t in kept] == [{"url": "https://93.184.216.34/a"}, {"channel_id": "C1"}]


def test_allow_private_lets_a_webhook_target_use_loopback(routing_factory, heartbeats):
    routing = routing_factory(free_port(), webhook_allow_private=True)
    service = register_service(heartbeats, "api")
    target = routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_WEBHOOK,
        config=config(url="http://127.0.0.1:9/hook"))).target
    assert target.config["url"] == "http://127.0.0.1:9/hook"


def test_target_for_an_unknown_service_is_not_found(routing):
    err = code_of(lambda: routing.CreateNotificationTarget(
        routing_pb2.CreateNotificationTargetRequest(
            service_id=4242, type=delivery_pb2.TARGET_TYPE_SLACK, config=config(channel_id="C"))))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_target_update_changes_only_given_fields_and_checks_type_changes(routing, heartbeats):
    service = register_service(heartbeats, "api")
    target = routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
        service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK,
        config=config(channel_id="C1"), priority=3)).target

    updated = routing.UpdateNotificationTarget(routing_pb2.UpdateNotificationTargetRequest(
        target_id=target.target_id, enabled=False)).target
    assert (updated.enabled, updated.priority, updated.config["channel_id"]) == (False, 3, "C1")

    # A new type with the old config does not fit: refused, naming the field.
    err = code_of(lambda: routing.UpdateNotificationTarget(
        routing_pb2.UpdateNotificationTargetRequest(
            target_id=target.target_id, type=delivery_pb2.TARGET_TYPE_PAGERDUTY)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "routing_key" in err.details()

    changed = routing.UpdateNotificationTarget(routing_pb2.UpdateNotificationTargetRequest(
        target_id=target.target_id, type=delivery_pb2.TARGET_TYPE_PAGERDUTY,
        config=config(routing_key="R" * 32), priority=1)).target
    assert changed.type == delivery_pb2.TARGET_TYPE_PAGERDUTY and changed.priority == 1

    routing.DeleteNotificationTarget(routing_pb2.DeleteNotificationTargetRequest(
        target_id=target.target_id))
    err = code_of(lambda: routing.DeleteNotificationTarget(
        routing_pb2.DeleteNotificationTargetRequest(target_id=target.target_id)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_targets_are_listed_by_service_then_priority(routing, heartbeats):
    a = register_service(heartbeats, "a")
    b = register_service(heartbeats, "b")
    for service, priority in ((b, 0), (a, 5), (a, 1)):
        routing.CreateNotificationTarget(routing_pb2.CreateNotificationTargetRequest(
            service_id=service.service_id, type=delivery_pb2.TARGET_TYPE_SLACK,
            config=config(channel_id="C"), priority=priority))
    only_a = routing.ListNotificationTargets(routing_pb2.ListNotificationTargetsRequest(
        service_id=a.service_id)).targets
    assert [t.priority for t in only_a] == [1, 5]
    everything = routing.ListNotificationTargets(routing_pb2.ListNotificationTargetsRequest()).targets
    assert [(t.service_id, t.priority) for t in everything] == [
        (a.service_id, 1), (a.service_id, 5), (b.service_id, 0)]
