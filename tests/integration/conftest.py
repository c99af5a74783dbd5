from __future__ import annotations

import grpc
import pytest

from medic.config import Settings
from medic.server import create_server
from medic.v1 import heartbeat_pb2_grpc
from services.heartbeat import app as heartbeat_app


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url)


@pytest.fixture
def heartbeat_server(settings, db):
    running = create_server(heartbeat_app.build(settings, db=db), port=0, workers=16)
    yield running
    running.stop(grace=2)


@pytest.fixture
def heartbeat_channel(heartbeat_server):
    channel = grpc.insecure_channel(f"127.0.0.1:{heartbeat_server.port}")
    yield channel
    channel.close()


@pytest.fixture
def heartbeats(heartbeat_channel):
    """A HeartbeatService stub on a real server backed by a real database."""
    return heartbeat_pb2_grpc.HeartbeatServiceStub(heartbeat_channel)
