"""Fixtures of the integration tests: real services on loopback, one at a time
or all of them with auth enforced (``stack``), gateways in front of them, and
routing with delivery behind a Slack stand-in."""
from __future__ import annotations

import dataclasses

import grpc
import pytest

from medic.config import Settings
from medic.server import create_server
from medic.v1 import delivery_pb2_grpc, heartbeat_pb2_grpc, routing_pb2_grpc
from medic_cli import main as cli
from services.heartbeat import app as heartbeat_app
from services.routing import app as routing_app
from tests.support.authorizers import AllowAll
from tests.support.cli import Run
from tests.support.http import HttpClient
from tests.support.receivers import SlackReceiver, WebhookReceiver
from tests.support.routing import start_delivery, start_routing
from tests.support.servers import serving
from tests.support.stack import Stack, start_gateway


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url)


@pytest.fixture
def heartbeat_server(settings, db):
    with serving(heartbeat_app.build(settings, db=db), AllowAll(), workers=16, grace=2) as running:
        yield running


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
    with serving(routing_app.build(settings, db=db), AllowAll()) as running:
        yield running


# The stack's remediation secrets (tests/integration/test_remediation_*.py sign and send with them).
WEBHOOK_SECRET = "whk-test-secret"
SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SECRETS_KEY = "bWVkaWMtdGVzdC1zZWNyZXRzLWtleS0zMi1ieXRlcyE="


@pytest.fixture
def stack(database_url, db, tmp_path):
    from medic.authz import KeyAuthorizer
    from services.auth import app as auth_app, bootstrap
    from services.delivery import app as delivery_app
    from services.remediation import app as remediation_app
    from tests.support.auth import SERVICE_TOKEN

    settings = Settings(database_url=database_url, service_token=SERVICE_TOKEN, data_dir=tmp_path,
                        monitor_enabled=False, auth_cache_ttl_seconds=1.0, webhook_allow_private=True,
                        webhook_secret=WEBHOOK_SECRET, slack_signing_secret=SLACK_SIGNING_SECRET,
                        secrets_key=SECRETS_KEY, remediation_scripts_dir=str(tmp_path / "scripts"))
    (tmp_path / "scripts").mkdir()
    admin_key = bootstrap.bootstrap_admin_key(settings, db)
    # Each service gets its own connection pool, as each process has in production.
    auth_component = auth_app.build(settings)
    servers = {"auth": create_server(auth_component, port=0, workers=8,
                                     authorizer=auth_app.authorizer(settings, auth_component))}
    settings = dataclasses.replace(settings, auth_target=f"127.0.0.1:{servers['auth'].port}")
    # In this order: each service is built knowing where the ones before it listen.
    for name, app, workers in (("delivery", delivery_app, 8), ("routing", routing_app, 8),
                               ("heartbeat", heartbeat_app, 16), ("remediation", remediation_app, 8)):
        servers[name] = create_server(app.build(settings), port=0, workers=workers,
                                      authorizer=KeyAuthorizer(settings))
        settings = dataclasses.replace(settings, **{f"{name}_target": f"127.0.0.1:{servers[name].port}"})
    yield Stack(settings, admin_key, servers)
    for name in ("remediation", "heartbeat", "routing", "delivery", "auth"):
        servers[name].stop(1)


@pytest.fixture
def medic(capsys, monkeypatch, tmp_path):
    """medic(*argv) -> Run, the `medic` command run in-process; the gateway URL and
    key come from the test (the environment's and the data directory's are hidden)."""
    for name in ("MEDIC_URL", "MEDIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEDIC_DATA_DIR", str(tmp_path / "no-data-dir"))

    def run(*argv: str) -> Run:
        capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)
    return run


@pytest.fixture
def gateway(stack):
    server = start_gateway(stack)
    yield server
    server.stop()


@pytest.fixture
def http(gateway, stack):
    """An admin's HTTP client of a gateway in front of the whole stack."""
    client = HttpClient(gateway.url, stack.admin_key)
    yield client
    client.session.close()


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


@pytest.fixture
def fake_slack():
    """A local stand-in for the Slack Web API."""
    receiver = SlackReceiver().start()
    yield receiver
    receiver.stop()


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


@pytest.fixture
def routing(routing_factory, delivery_server):
    """Routing in front of the delivery server (test modules that manage teams and
    targets only override it with one that needs no delivery)."""
    return routing_factory(delivery_server.port)


@pytest.fixture
def receiver():
    """A webhook receiver on loopback."""
    with WebhookReceiver() as hook:
        yield hook
