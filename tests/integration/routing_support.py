"""Fixtures and helpers of the routing integration tests (kept out of the shared
conftest files)."""
from __future__ import annotations

import dataclasses

import grpc
import pytest

from medic.server import create_server
from tests.support.authorizers import AllowAll
from medic.v1 import common_pb2, delivery_pb2_grpc, events_pb2, heartbeat_pb2, routing_pb2_grpc
from services.delivery import app as delivery_app
from services.routing import app as routing_app
from tests.fakes.receivers import SlackReceiver


def start_routing(settings, db, delivery_port: int, default_channel: str = "", **overrides):
    routing_settings = dataclasses.replace(settings, delivery_target=f"127.0.0.1:{delivery_port}",
                                           slack_default_channel=default_channel, **overrides)
    return create_server(routing_app.build(routing_settings, db=db), port=0, workers=8,
                         authorizer=AllowAll())


@pytest.fixture
def routing_factory(settings, db):
    """Starts routing servers pointed at a delivery port; yields stubs."""
    started = []

    def start(delivery_port: int, default_channel: str = "", **overrides):
        running = start_routing(settings, db, delivery_port, default_channel, **overrides)
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        started.append((running, channel))
        return routing_pb2_grpc.RoutingServiceStub(channel)

    yield start
    for running, channel in started:
        channel.close()
        running.stop(grace=1)


def register_service(heartbeats, name: str, team: str = "",
                     mode=common_pb2.NOTIFY_MODE_ALL) -> heartbeat_pb2.Service:
    return heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(
        heartbeat_name=name, service_name=name, alert_interval_seconds=60, team=team,
        notify_mode=mode)).service


def alert_event(service: heartbeat_pb2.Service, kind=events_pb2.ALERT_EVENT_KIND_TRIGGER,
                alert_id: int = 1, team_id: int = 0, seq: str = "") -> events_pb2.AlertEvent:
    kind_name = events_pb2.AlertEventKind.Name(kind).removeprefix("ALERT_EVENT_KIND_").lower()
    return events_pb2.AlertEvent(
        event_id=f"alert-{alert_id}-{kind_name}{seq}", kind=kind, alert_id=alert_id,
        reason=heartbeat_pb2.ALERT_REASON_MISSED_HEARTBEATS,
        service=events_pb2.ServiceFacts(
            service_id=service.service_id, heartbeat_name=service.heartbeat_name,
            service_name=service.service_name, team=service.team, team_id=team_id,
            priority=service.priority, notify_mode=service.notify_mode,
            alert_interval_seconds=service.alert_interval_seconds))


class _FakeSlack(SlackReceiver):
    @property
    def posted(self) -> list[str]:
        """Channels that got a chat.postMessage, in arrival order."""
        return [r.json()["channel"] for r in self.requests if r.path.endswith("/chat.postMessage")]


@pytest.fixture
def fake_slack():
    """A local stand-in for the Slack Web API."""
    receiver = _FakeSlack().start()
    yield receiver
    receiver.stop()


def start_delivery(settings, slack_url: str, port: int = 0):
    """A real delivery service sending Slack messages to ``slack_url``."""
    delivery_settings = dataclasses.replace(settings, slack_api_url=slack_url, webhook_allow_private=True,
                                            delivery_retry_delays=(0.2, 0.5))
    return create_server(delivery_app.build(delivery_settings), port=port, workers=8,
                         authorizer=AllowAll())


@pytest.fixture
def delivery_server(settings, fake_slack):
    running = start_delivery(settings, fake_slack.url)
    yield running
    running.stop(grace=1)


@pytest.fixture
def deliveries(delivery_server):
    channel = grpc.insecure_channel(f"127.0.0.1:{delivery_server.port}")
    yield delivery_pb2_grpc.DeliveryServiceStub(channel)
    channel.close()
