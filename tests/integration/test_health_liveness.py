"""The health entry Kubernetes' liveness probes ask: SERVING while the process serves,
whatever its database says, so that a database outage restarts no pod."""
from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from medic.server import DEPENDENCY_HEALTH_PREFIX, LIVENESS_HEALTH_SERVICE, Component, create_server
from tests.support.authorizers import AllowAll

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def status(stub, service: str):
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_a_process_whose_database_is_down_is_alive_but_not_ready():
    database_up = [True]
    running = create_server(Component(name="probe", servicers=[],
                                      readiness={"database": lambda: database_up[0]}),
                            authorizer=AllowAll())
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert status(stub, "") == SERVING
        assert status(stub, LIVENESS_HEALTH_SERVICE) == SERVING

        database_up[0] = False
        running.check_readiness()
        assert status(stub, "") == NOT_SERVING
        assert status(stub, DEPENDENCY_HEALTH_PREFIX + "database") == NOT_SERVING
        assert status(stub, LIVENESS_HEALTH_SERVICE) == SERVING

        running.stop(grace=0)
