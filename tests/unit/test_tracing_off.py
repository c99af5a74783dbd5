"""Tracing costs nothing unless an OTLP endpoint is configured: neither the tracing SDK nor
the exporter nor the gRPC instrumentation is imported, no interceptor is added, and the span
helpers are shared no-ops. (The redis client imports the OpenTelemetry API and metrics SDK
by itself when they are installed, for its own optional metrics: that is not tracing.)"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


PROCESS_START = """
    import sys
    from medic import logs, tracing
    from medic.interceptors import service_channel
    from medic.server import Component, create_server
    import gateway.app, services.heartbeat.app, services.delivery.app, services.routing.app
    from tests.support.authorizers import AllowAll
    logs.setup("heartbeat", "INFO")
    server = create_server(Component(name="t", servicers=[]), authorizer=AllowAll())
    channel = service_channel(f"127.0.0.1:{server.port}")
    with tracing.span("ingest batch", keys=["alert-1-trigger"]):
        tracing.remember("alert-1-trigger")
    tracing_modules = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.instrumentation",
                       "opentelemetry.propagate")
    loaded = sorted(m for m in sys.modules if m.startswith(tracing_modules))
    print(tracing.enabled, len(server.server._state.interceptor_pipeline.interceptors), loaded)
    server.stop(0)
"""


def test_without_an_endpoint_no_tracing_module_is_loaded():
    result = run(PROCESS_START)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "False 1 []"


def test_with_an_endpoint_the_sdk_and_the_grpc_instrumentation_are_on():
    # Nothing listens on port 9: the exporter gives up on the one span at exit after 1 s.
    result = run(PROCESS_START, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT="1")
    assert result.returncode == 0, result.stderr
    enabled, interceptors, _ = result.stdout.split(" ", 2)
    assert (enabled, interceptors) == ("True", "2")
    assert "opentelemetry.sdk.trace" in result.stdout and "opentelemetry.instrumentation.grpc" in result.stdout


def test_the_no_op_span_is_one_shared_object():
    from medic import tracing

    assert not tracing.enabled
    assert tracing.span("a") is tracing.span("b", parents=[None], keys=["x"])
    assert tracing.current_context() is None
    assert tracing.log_fields() == {}
    assert tracing.start_http({}, "GET", "/x") is None
