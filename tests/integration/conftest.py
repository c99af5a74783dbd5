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
from tests.support.authorizers import AllowAll
from medic.v1 import heartbeat_pb2_grpc
from services.heartbeat import app as heartbeat_app
from services.routing import app as routing_app


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url)


@pytest.fixture
def heartbeat_server(settings, db):
    running = create_server(heartbeat_app.build(settings, db=db), port=0, workers=16,
                            authorizer=AllowAll())
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
    running = create_server(routing_app.build(settings, db=db), port=0, workers=8,
                            authorizer=AllowAll())
    yield running
    running.stop(grace=1)


@dataclasses.dataclass
class Stack:
    """Every Medic service in-process on loopback, with auth enforced, on one test database."""
    settings: Settings
    admin_key: str
    servers: dict


@pytest.fixture
def stack(database_url, db, tmp_path):
    from medic.authz import KeyAuthorizer
    from services.auth import app as auth_app, bootstrap
    from services.delivery import app as delivery_app
    from tests.integration.auth_support import SERVICE_TOKEN

    settings = Settings(database_url=database_url, service_token=SERVICE_TOKEN, data_dir=tmp_path,
                        monitor_enabled=False, auth_cache_ttl_seconds=1.0, webhook_allow_private=True)
    admin_key = bootstrap.bootstrap_admin_key(settings, db)
    # Each service gets its own connection pool, as each process has in production.
    auth_component = auth_app.build(settings)
    servers = {"auth": create_server(auth_component, port=0, workers=8,
                                     authorizer=auth_app.authorizer(settings, auth_component))}
    settings = dataclasses.replace(settings, auth_target=f"127.0.0.1:{servers['auth'].port}")
    servers["delivery"] = create_server(delivery_app.build(settings), port=0, workers=8,
                                        authorizer=KeyAuthorizer(settings))
    settings = dataclasses.replace(settings, delivery_target=f"127.0.0.1:{servers['delivery'].port}")
    servers["routing"] = create_server(routing_app.build(settings), port=0, workers=8,
                                       authorizer=KeyAuthorizer(settings))
    settings = dataclasses.replace(settings, routing_target=f"127.0.0.1:{servers['routing'].port}")
    servers["heartbeat"] = create_server(heartbeat_app.build(settings), port=0, workers=16,
                                         authorizer=KeyAuthorizer(settings))
    settings = dataclasses.replace(settings, heartbeat_target=f"127.0.0.1:{servers['heartbeat'].port}")
    yield Stack(settings, admin_key, servers)
    for name in ("heartbeat", "routing", "delivery", "auth"):
        servers[name].stop(1)


def start_gateway(stack: Stack, **overrides) -> ThreadedUvicorn:
    from medic.authz import AsyncKeyAuthorizer, service_credential_metadata

    settings = dataclasses.replace(stack.settings, **overrides)
    app = create_app(settings, authorizer=AsyncKeyAuthorizer(settings),
                     credential_metadata=service_credential_metadata(settings))
    return ThreadedUvicorn(app, free_port()).start()


@pytest.fixture
def gateway(stack):
    server = start_gateway(stack)
    yield server
    server.stop()


class HttpClient:
    """requests against one gateway, with a timeout on every call and, when given,
    an API key."""

    def __init__(self, url: str, key: str | None = None):
        self.url = url
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

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
def http(gateway, stack):
    """An admin's HTTP client of a gateway in front of the whole stack."""
    client = HttpClient(gateway.url, stack.admin_key)
    yield client
    client.session.close()
