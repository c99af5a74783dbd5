"""The heartbeat service's calls to RoutingService: a batch of alert events
handed over in one ``RouteAlerts`` call, each event carrying every service fact
routing and delivery need; and the same events to RemediationService
(``HandleAlertEvents``)."""
from __future__ import annotations

import grpc

from medic import enums
from medic.db import Row
from medic.timestamps import to_timestamp
from medic.v1 import events_pb2, remediation_pb2, remediation_pb2_grpc, routing_pb2, routing_pb2_grpc

OK = grpc.StatusCode.OK.value[0]
CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def alert_event(row: Row) -> events_pb2.AlertEvent:
    """The event of an outbox row (``outbox_store.NOTIFICATION_DETAILS``)."""
    event = _alert_event(row)
    if row.get("job_run_id") is not None and row.get("run_status") is not None:
        event.run.CopyFrom(events_pb2.RunFacts(run_id=row["run_id"] or "", status=row["run_status"],
                                               output=row["run_output"] or ""))
    return event


def _alert_event(row: Row) -> events_pb2.AlertEvent:
    return events_pb2.AlertEvent(
        event_id=row["event_id"], kind=enums.ALERT_EVENT_KIND.numbers[row["kind"]], alert_id=row["alert_id"],
        reason=enums.ALERT_REASON.numbers[row["reason"]],
        service=events_pb2.ServiceFacts(
            service_id=row["service_id"], heartbeat_name=row["heartbeat_name"],
            service_name=row["service_name"], team=row["team"], team_id=row["team_id"] or 0,
            priority=enums.PRIORITY.numbers[row["priority"]], runbook=row["runbook"] or "",
            notify_mode=enums.NOTIFY_MODE.numbers[row["notify_mode"]],
            last_heartbeat_at=to_timestamp(row["last_heartbeat_at"]),
            alert_interval_seconds=row["alert_interval_seconds"]),
        opened_at=to_timestamp(row["opened_at"]), closed_at=to_timestamp(row["closed_at"]),
        occurred_at=to_timestamp(row["occurred_at"]))


def route_alerts_request(rows: list[Row]) -> routing_pb2.RouteAlertsRequest:
    return routing_pb2.RouteAlertsRequest(
        requests=[routing_pb2.RouteAlertRequest(event=alert_event(row)) for row in rows])


def refusal(result: routing_pb2.RouteAlertResult) -> str | None:
    """None when routing accepted the event, else why not."""
    if result.code == OK:
        return None
    return f"{CODE_NAMES.get(result.code, result.code)}: {result.message}"


class RoutingClient:
    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = routing_pb2_grpc.RoutingServiceStub(channel)
        self.timeout = timeout

    def route_alerts(self, request: routing_pb2.RouteAlertsRequest) -> routing_pb2.RouteAlertsResponse:
        """Raises ``grpc.RpcError`` when the call fails as a whole."""
        return self.stub.RouteAlerts(request, timeout=self.timeout)


def handle_alert_events_request(rows: list[Row]) -> remediation_pb2.HandleAlertEventsRequest:
    """The remediation hand-off's request: the same events routing gets."""
    return remediation_pb2.HandleAlertEventsRequest(events=[alert_event(row) for row in rows])


class RemediationClient:
    def __init__(self, channel: grpc.Channel, timeout: float):
        self.stub = remediation_pb2_grpc.RemediationServiceStub(channel)
        self.timeout = timeout

    def handle_alert_events(self, request: remediation_pb2.HandleAlertEventsRequest
                            ) -> remediation_pb2.HandleAlertEventsResponse:
        """Raises ``grpc.RpcError`` when the call fails as a whole."""
        return self.stub.HandleAlertEvents(request, timeout=self.timeout)
