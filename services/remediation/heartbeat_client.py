"""The remediation service's calls to HeartbeatService: a service's facts (its
names for ${SERVICE_NAME}, whether it exists) and its last heartbeat (the
condition steps)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import grpc

from medic.errors import NotFound, Unavailable
from medic.v1 import heartbeat_pb2, heartbeat_pb2_grpc


@dataclass(frozen=True)
class ServiceFacts:
    service_id: int
    heartbeat_name: str
    service_name: str
    last_heartbeat_at: dt.datetime | None


class HeartbeatClient:
    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = heartbeat_pb2_grpc.HeartbeatServiceStub(channel)
        self.timeout = timeout

    def service(self, service_id: int) -> ServiceFacts:
        """NotFound when there is no such service; Unavailable when heartbeat does not answer."""
        try:
            found = self.stub.GetService(heartbeat_pb2.GetServiceRequest(service_id=service_id),
                                         timeout=self.timeout).service
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"Service ID {service_id} not found.") from None
            raise Unavailable(f"the heartbeat service did not answer ({exc.code().name})") from None
        last = (found.last_heartbeat_at.ToDatetime(tzinfo=dt.timezone.utc)
                if found.HasField("last_heartbeat_at") else None)
        return ServiceFacts(found.service_id, found.heartbeat_name, found.service_name, last)

    def last_heartbeat(self, service_id: int) -> dt.datetime | None:
        return self.service(service_id).last_heartbeat_at
