"""The server interceptor wraps each method's handler once and still authorizes
every call; names of methods that do not exist are not kept (a client can send any)."""
from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest
from prometheus_client import REGISTRY

from medic.errors import Unauthenticated
from medic.interceptors import Identity, ServerInterceptor, current_identity

METHOD = "/medic.v1.HeartbeatService/RecordHeartbeat"


def served(code: str) -> float:
    return REGISTRY.get_sample_value("medic_rpc_requests_total", {
        "service": "wrapping-test", "method": "RecordHeartbeat", "code": code}) or 0.0


def timed() -> float:
    return REGISTRY.get_sample_value("medic_rpc_duration_seconds_count", {
        "service": "wrapping-test", "method": "RecordHeartbeat"}) or 0.0


class Context:
    def __init__(self, key: str):
        self.metadata = (("authorization", key),)
        self.aborted: tuple | None = None

    def invocation_metadata(self):
        return self.metadata

    def peer(self):
        return "ipv4:127.0.0.1:5000"

    def code(self):
        return self.aborted[0] if self.aborted else None

    def abort(self, code, message):
        self.aborted = (code, message)
        raise Exception(message)  # what grpc's context.abort does


class KeyPerCall:
    """Lets in one key and counts the calls it decides."""

    def __init__(self):
        self.calls = 0

    def authorize(self, policy, metadata, peer):
        self.calls += 1
        if metadata.get("authorization") != "good":
            raise Unauthenticated("invalid API key")
        return Identity(principal="key:good")


def test_a_method_is_wrapped_once_and_every_call_is_still_authorized():
    looked_up = []

    def continuation(details):
        looked_up.append(details.method)
        return grpc.unary_unary_rpc_method_handler(lambda request, context: current_identity().principal)

    authorizer = KeyPerCall()
    interceptor = ServerInterceptor("wrapping-test", authorizer)
    before = served("OK"), served("UNAUTHENTICATED"), timed()
    details = SimpleNamespace(method=METHOD, invocation_metadata=())
    first = interceptor.intercept_service(continuation, details)
    second = interceptor.intercept_service(continuation, details)

    assert first is second and looked_up == [METHOD]
    assert first.unary_unary(None, Context("good")) == "key:good"
    refused = Context("bad")
    with pytest.raises(Exception):
        second.unary_unary(None, refused)
    assert refused.aborted == (grpc.StatusCode.UNAUTHENTICATED, "invalid API key")
    assert authorizer.calls == 2
    # Each call counted under its own code, both timed.
    assert (served("OK"), served("UNAUTHENTICATED"), timed()) == (before[0] + 1, before[1] + 1, before[2] + 2)


def test_unknown_methods_are_looked_up_each_time_and_not_kept():
    looked_up = []

    def continuation(details):
        looked_up.append(details.method)
        return None

    interceptor = ServerInterceptor("heartbeat", KeyPerCall())
    for n in range(3):
        details = SimpleNamespace(method=f"/medic.v1.HeartbeatService/Nope{n % 2}", invocation_metadata=())
        assert interceptor.intercept_service(continuation, details) is None
    assert len(looked_up) == 3
    assert interceptor._wrapped == {}


def test_a_method_streaming_its_responses_is_refused_not_served_unchecked():
    """The interceptor authorizes unary responses only; a streaming Medic method
    (none exists today) must fail closed, while gRPC health's Watch stays open."""
    from concurrent import futures

    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    served_items = []

    def tail(request, context):
        served_items.append(request)
        yield b"secret"

    authorizer = KeyPerCall()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         interceptors=[ServerInterceptor("streaming-test", authorizer)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "medic.v1.HeartbeatService", {"Tail": grpc.unary_stream_rpc_method_handler(tail)})])
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream("/medic.v1.HeartbeatService/Tail")(
                b"", metadata=(("authorization", "good"),), timeout=5)
            with pytest.raises(grpc.RpcError) as refused:
                list(call)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "Tail streams its responses" in refused.value.details()
            assert served_items == [] and authorizer.calls == 0

            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
    finally:
        server.stop(0)
