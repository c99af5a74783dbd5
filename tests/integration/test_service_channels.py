"""Channels between Medic processes reach a peer that restarted at once."""
from __future__ import annotations

import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from medic.interceptors import service_channel


def _serve(port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port


def _check(channel: grpc.Channel) -> None:
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)


def test_a_new_channel_reaches_a_restarted_peer_while_an_old_one_backs_off():
    first, port = _serve()
    old = service_channel(f"127.0.0.1:{port}")
    _check(old)
    first.stop(0)
    try:  # the old channel has lost its peer and waits before reconnecting
        _check(old)
        raise AssertionError("the stopped server answered")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.2)

    second, _ = _serve(port)  # the peer is back, at the same address
    new = service_channel(f"127.0.0.1:{port}")
    try:
        _check(new)  # not failed by the old channel's backoff
    finally:
        new.close()
        old.close()
        second.stop(0)
