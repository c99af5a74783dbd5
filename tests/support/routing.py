"""Routing for tests: a real routing server pointed at a delivery server, a real
delivery server sending Slack messages to a stand-in, registered services."""
from __future__ import annotations

import dataclasses

from medic.server import create_server
from medic.v1 import common_pb2, heartbeat_pb2
from services.delivery import app as delivery_app
from services.routing import app as routing_app
from tests.support.authorizers import AllowAll


def start_routing(settings, db, delivery_port: int, default_channel: str = "", **overrides):
    routing_settings = dataclasses.replace(settings, delivery_target=f"127.0.0.1:{delivery_port}",
                                           slack_default_channel=default_channel, **overrides)
    return create_server(routing_app.build(routing_settings, db=db), port=0, workers=8,
                         authorizer=AllowAll())


def register_service(heartbeats, name: str, team: str = "",
                     mode=common_pb2.NOTIFY_MODE_ALL) -> heartbeat_pb2.Service:
    return heartbeats.RegisterService(heartbeat_pb2.RegisterServiceRequest(
        heartbeat_name=name, service_name=name, alert_interval_seconds=60, team=team,
        notify_mode=mode)).service


def start_delivery(settings, slack_url: str, port: int = 0):
    """A real delivery service sending Slack messages to ``slack_url``."""
    delivery_settings = dataclasses.replace(settings, slack_api_url=slack_url, webhook_allow_private=True,
                                            delivery_retry_delays=(0.2, 0.5))
    return create_server(delivery_app.build(delivery_settings), port=port, workers=8,
                         authorizer=AllowAll())
