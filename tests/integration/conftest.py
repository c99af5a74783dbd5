from __future__ import annotations

import dataclasses

import grpc
import pytest
import requests

from gateway.app import create_app
from tests.conftest import free_port
from tests.support.http import ThreadedUvicorn

from medic.config import Settings
from medic.server import create_server
from medic.v1 import heartbeat_pb2_grpc
from services.heartbeat import app as heartbeat_app
from services.routing import app as routing_app


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


@pytest.fixture
def routing_server(settings, db):
    """A real routing service (its delivery target is the default, usually down)."""
    running = create_server(routing_app.build(settings, db=db), port=0, workers=8)
    yield running
    running.stop(grace=1)


@pytest.fixture
def gateway(settings, heartbeat_server, routing_server):
    gateway_settings = dataclasses.replace(settings, heartbeat_target=f"127.0.0.1:{heartbeat_server.port}",
                                           routing_target=f"127.0.0.1:{routing_server.port}")
    server = ThreadedUvicorn(create_app(gateway_settings), free_port()).start()
    yield server
    server.stop()


class HttpClient:
    """requests against one gateway, with a timeout on every call."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 10)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, data=None, **kw):
        return self.request("POST", path, json=json, data=data, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def http(gateway):
    client = HttpClient(gateway.url)
    yield client
    client.session.close()
