"""Helpers of the auth tests: a real auth server, heartbeat servers guarded by
``KeyAuthorizer``, and stubs that present a key."""
from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import grpc

from medic.authz import KeyAuthorizer
from medic.config import Settings
from medic.server import RunningServer, create_server
from medic.v1 import auth_pb2, auth_pb2_grpc, heartbeat_pb2, heartbeat_pb2_grpc, options_pb2
from services.auth import app as auth_app
from services.heartbeat import app as heartbeat_app

SERVICE_TOKEN = "mds_" + secrets.token_urlsafe(32)
SCOPE = {"read": options_pb2.SCOPE_READ, "write": options_pb2.SCOPE_WRITE,
         "admin": options_pb2.SCOPE_ADMIN}


def auth_settings(database_url: str, **overrides) -> Settings:
    return Settings(database_url=database_url, service_token=SERVICE_TOKEN, **overrides)


def start_auth_server(settings: Settings, db) -> RunningServer:
    component = auth_app.build(settings, db=db)
    return create_server(component, port=0, workers=8,
                         authorizer=auth_app.authorizer(settings, component))


def start_heartbeat_server(settings: Settings, db, auth_port: int) -> RunningServer:
    """A heartbeat service whose callers are checked with the auth service at auth_port."""
    settings = dataclasses.replace(settings, auth_target=f"127.0.0.1:{auth_port}")
    return create_server(heartbeat_app.build(settings, db=db), port=0, workers=8,
                         authorizer=KeyAuthorizer(settings))


def bearer(key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),) if key is not None else ()


class Client:
    """Stubs of both services on one server pair, presenting one key."""

    def __init__(self, auth_port: int, heartbeat_port: int | None = None):
        self.channels = [grpc.insecure_channel(f"127.0.0.1:{auth_port}")]
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channels[0])
        if heartbeat_port is not None:
            self.channels.append(grpc.insecure_channel(f"127.0.0.1:{heartbeat_port}"))
            self.heartbeat = heartbeat_pb2_grpc.HeartbeatServiceStub(self.channels[1])

    def close(self):
        for channel in self.channels:
            channel.close()

    def create_key(self, admin_key: str, *scopes: str, name: str = "test", expires_in: float | None = None,
                   **limits) -> str:
        request = auth_pb2.CreateApiKeyRequest(
            name=name, scopes=[SCOPE[s] for s in scopes],
            rate_limits=auth_pb2.RateLimitOverrides(**limits))
        if expires_in is not None:
            request.expires_at.FromDatetime(dt.datetime.now(dt.timezone.utc)
                                            + dt.timedelta(seconds=expires_in))
        return self.auth.CreateApiKey(request, metadata=bearer(admin_key), timeout=5).key

    def code_of(self, call, request, key: str | None) -> grpc.StatusCode:
        try:
            call(request, metadata=bearer(key), timeout=5)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()


def register_request(name: str) -> heartbeat_pb2.RegisterServiceRequest:
    return heartbeat_pb2.RegisterServiceRequest(heartbeat_name=name, service_name=name,
                                                alert_interval_seconds=60)
