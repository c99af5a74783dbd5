"""OpenTelemetry traces across the processes: every Medic process exports its spans over
OTLP/HTTP to a local collector stand-in (OtlpReceiver decodes the protobuf), a caller's
W3C traceparent is continued through every RPC and through the outboxes, and the
processes' JSON logs carry the trace id."""
from __future__ import annotations

import json
import secrets
import time

import pytest

from tests.support.system import System
from tests.support.receivers import OtlpReceiver, ReceivedSpan, SlackReceiver

pytestmark = pytest.mark.e2e

SERVER, CLIENT = 2, 3  # OTLP SpanKind


@pytest.fixture
def collector():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def traced_system(database_url, tmp_path, collector):
    slack = SlackReceiver().start()
    system = System(database_url, tmp_path / "data", {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not the default 5 s
        "MEDIC_LOG_LEVEL": "DEBUG",  # a log line per RPC, to find the trace id in
        "MEDIC_SLACK_API_URL": slack.url, "MEDIC_SLACK_TOKEN": "xoxb-trace",
        "MEDIC_SLACK_DEFAULT_CHANNEL": "CTRACE",
        "MEDIC_MONITOR_TICK_SECONDS": "0.2", "MEDIC_HANDOFF_POLL_SECONDS": "0.1",
    })
    system.slack = slack
    try:
        yield system.start_all()
    finally:
        system.stop_all()
        slack.stop()


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def spans_of(collector: OtlpReceiver, trace_id: str, until, timeout: float = 20) -> list[ReceivedSpan]:
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in collector.spans() if s.trace_id == trace_id]
        if until(spans):
            return spans
        assert time.monotonic() < deadline, sorted((s.service, s.name) for s in spans)
        time.sleep(0.2)


def assert_one_tree(spans: list[ReceivedSpan], caller_span_id: str) -> None:
    """Every span's parent is in the trace, or is the caller's span: one connected trace."""
    ids = {s.span_id for s in spans} | {caller_span_id}
    for s in spans:
        assert s.parent_span_id in ids, f"{s.service} {s.name} hangs off {s.parent_span_id}"


def log_lines_with(system: System, trace_id: str) -> dict[str, list[dict]]:
    found = {}
    for name, process in system.processes.items():
        lines = []
        for raw in process.log.read_text().splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("trace_id") == trace_id:
                lines.append(entry)
        found[name] = lines
    return found


def post_traced_heartbeat(system: System, name: str, status: str) -> tuple[str, str]:
    """Registers ``name`` and posts one heartbeat carrying a caller's traceparent:
    (trace id, the caller's span id)."""
    system.register(name, interval_seconds=60)
    header, trace_id, caller_span = traceparent()
    response = system.http.post(system.gateway_url + "/heartbeat", headers={"traceparent": header},
                                json={"heartbeat_name": name, "status": status}, timeout=10)
    assert response.status_code == 201
    return trace_id, caller_span


def test_a_heartbeat_is_one_trace_from_the_caller_through_gateway_and_heartbeat(traced_system, collector):
    system = traced_system
    trace_id, caller_span = post_traced_heartbeat(system, "nightly-backup", "UP")

    def complete(spans):
        return {("medic-heartbeat", "ingest batch"), ("medic-heartbeat", SERVER)} <= \
            {(s.service, s.name) for s in spans} | {(s.service, s.kind) for s in spans}

    spans = spans_of(collector, trace_id, complete)
    assert_one_tree(spans, caller_span)
    (http,) = [s for s in spans if s.service == "medic-gateway" and s.kind == SERVER]
    assert http.parent_span_id == caller_span and http.name == "POST /heartbeat"
    assert http.attributes["http.response.status_code"] == 201
    rpc = [s for s in spans if s.service == "medic-gateway" and s.kind == CLIENT]
    assert [s.name for s in rpc] == ["/medic.v1.HeartbeatService/RecordHeartbeats"]
    (batched,) = [s for s in spans if s.name == "heartbeat batch"]
    assert batched.parent_span_id == http.span_id and rpc[0].parent_span_id == batched.span_id
    (served,) = [s for s in spans if s.service == "medic-heartbeat" and s.kind == SERVER]
    assert served.parent_span_id == rpc[0].span_id
    (batch,) = [s for s in spans if s.name == "ingest batch"]
    assert batch.parent_span_id == served.span_id and batch.attributes["medic.heartbeats"] == 1

    logs = log_lines_with(system, trace_id)
    assert logs["heartbeat"], "the heartbeat service's log lines inside the trace carry its id"


def test_an_alert_is_one_trace_from_the_failing_heartbeat_to_its_delivery(traced_system, collector):
    system = traced_system
    trace_id, caller_span = post_traced_heartbeat(system, "billing", "FAILED")
    system.slack.wait_for(1, timeout=20)

    def delivered(spans):
        return any(s.name == "delivery attempt" for s in spans)

    spans = spans_of(collector, trace_id, delivered)
    assert_one_tree(spans, caller_span)
    services = {s.service for s in spans}
    assert {"medic-gateway", "medic-heartbeat", "medic-routing", "medic-delivery"} <= services
    names = {(s.service, s.name) for s in spans}
    assert ("medic-heartbeat", "alert hand-off") in names
    assert ("medic-routing", "/medic.v1.RoutingService/RouteAlerts") in names
    assert ("medic-delivery", "/medic.v1.DeliveryService/EnqueueNotificationsBatch") in names
    (attempt,) = [s for s in spans if s.name == "delivery attempt"]
    assert attempt.service == "medic-delivery" and attempt.attributes["medic.target_type"] == "slack"
    assert attempt.attributes["medic.event_id"].endswith("-trigger")

    logs = log_lines_with(system, trace_id)
    for process in ("heartbeat", "routing", "delivery"):
        assert logs[process], f"no {process} log line carries the trace id"


def test_probes_make_no_traces(traced_system, collector):
    system = traced_system
    for _ in range(3):
        assert system.http.get(system.gateway_url + "/health/ready", timeout=10).status_code == 200
    time.sleep(1)
    assert not [s for s in collector.spans() if "Health" in s.name]
