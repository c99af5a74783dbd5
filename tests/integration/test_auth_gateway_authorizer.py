"""AsyncKeyAuthorizer, the gateway's edge check, against a real auth service;
and the identity it propagates, accepted by a service without a second count."""
from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest

from medic import contracts
from medic.authz import AsyncKeyAuthorizer
from medic.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from medic.v1 import heartbeat_pb2
from services.auth import bootstrap
from tests.support.auth import (SERVICE_TOKEN, Client, auth_settings, start_auth_server,
                                            start_heartbeat_server)

READ = contracts.policy_for("/medic.v1.HeartbeatService/ListServices")
WRITE = contracts.policy_for("/medic.v1.HeartbeatService/RegisterService")
HEARTBEAT = contracts.policy_for("/medic.v1.HeartbeatService/RecordHeartbeat")


@pytest.fixture
def setup(database_url, db, tmp_path):
    settings = auth_settings(database_url, data_dir=tmp_path)
    auth = start_auth_server(settings, db)
    heartbeat = start_heartbeat_server(settings, db, auth.port)
    client = Client(auth.port, heartbeat.port)
    admin_key = bootstrap.bootstrap_admin_key(settings, db)
    edge_settings = dataclasses.replace(settings, auth_target=f"127.0.0.1:{auth.port}")
    yield edge_settings, client, admin_key
    client.close()
    heartbeat.stop(grace=1)
    auth.stop(grace=1)


def run_edge(settings, scenario):
    async def main():
        edge = AsyncKeyAuthorizer(settings)
        try:
            return await scenario(edge)
        finally:
            await edge.verifier.inner.close()
    return asyncio.run(main())


def test_edge_decides_limits_and_propagates_identity(setup):
    settings, client, admin_key = setup
    key = client.create_key(admin_key, "read", name="dash board", management_per_minute=2)

    async def scenario(edge):
        first = await edge.authorize(READ, {"Authorization": f"Bearer {key}"}, "10.0.0.1")
        second = await edge.authorize(READ, {"authorization": f"Bearer {key}"}, "10.0.0.1")
        with pytest.raises(ResourceExhausted) as refused:
            await edge.authorize(READ, {"authorization": f"Bearer {key}"}, "10.0.0.1")
        with pytest.raises(PermissionDenied):
            await edge.authorize(WRITE, {"authorization": f"Bearer {key}"}, "10.0.0.1")
        with pytest.raises(Unauthenticated):
            await edge.authorize(READ, {}, "10.0.0.1")
        with pytest.raises(Unauthenticated):  # the service credential is not for HTTP callers
            await edge.authorize(READ, {"authorization": f"Bearer {SERVICE_TOKEN}"}, "10.0.0.1")
        return first, second, refused.value

    first, second, refused = run_edge(settings, scenario)
    assert first.identity.principal == f"key:{key.split('_')[1]}"
    assert (first.rate_limit.limit, first.rate_limit.remaining) == (2, 1)
    assert second.rate_limit.remaining == 0
    assert dict(refused.trailers)["x-ratelimit-remaining"] == "0"

    # The onward RPC: service credential + propagated identity. The key's window is
    # full, yet the service accepts: the edge counted this request already.
    metadata = (("authorization", f"Bearer {SERVICE_TOKEN}"), *first.metadata)
    for _ in range(3):
        client.heartbeat.ListServices(heartbeat_pb2.ListServicesRequest(), metadata=metadata, timeout=5)
    # Propagated identity without the service credential is not trusted.
    with pytest.raises(grpc.RpcError) as err:
        client.heartbeat.ListServices(heartbeat_pb2.ListServicesRequest(), metadata=first.metadata,
                                      timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_anonymous_heartbeats_are_bucketed_by_client_ip(setup):
    settings, _client, _admin = setup
    settings = dataclasses.replace(settings, allow_anonymous_heartbeats=True,
                                   rate_limit_anonymous_heartbeat_per_minute=1)

    async def scenario(edge):
        decision = await edge.authorize(HEARTBEAT, {}, "192.0.2.7")
        with pytest.raises(ResourceExhausted):
            await edge.authorize(HEARTBEAT, {}, "192.0.2.7")
        other = await edge.authorize(HEARTBEAT, {}, "192.0.2.8")
        with pytest.raises(Unauthenticated):
            await edge.authorize(READ, {}, "192.0.2.7")
        return decision, other

    decision, other = run_edge(settings, scenario)
    assert decision.identity.principal == "ip:192.0.2.7" and other.rate_limit.allowed
    assert ("x-medic-principal", "ip:192.0.2.7") in decision.metadata
