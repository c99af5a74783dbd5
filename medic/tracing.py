"""OpenTelemetry traces, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set.

``setup(process)`` (called by ``medic.logs.setup`` as a process starts) then installs the
OpenTelemetry SDK with the OTLP/HTTP exporter and a batching span processor; the sampler
and the rest come from the standard ``OTEL_*`` variables (``OTEL_TRACES_SAMPLER``,
``OTEL_TRACES_SAMPLER_ARG``, ...). Each process is the resource ``medic-<process>``.

What is traced:

* every RPC, server and client side, by the official gRPC instrumentation (its
  interceptors are added by ``medic.server`` and the channel factories in
  ``medic.interceptors``); the W3C ``traceparent`` travels in the call's metadata;
* every gateway request (``start_http``/``end_http``, continuing a caller's
  ``traceparent``);
* the work that leaves the RPC's thread: a gateway heartbeat batch, an ingest batch, a
  monitor pass, a hand-off to routing, each delivery attempt (``span``).

Work queued in an outbox table is picked up later, possibly by another thread:
``remember(key)`` keeps the current span's context under the work's key (an alert
event id) and ``span(..., keys=...)`` continues it, so that one trace runs from the
request that opened an alert to its deliveries. The memory is per process and
bounded; work picked up by another replica starts a trace of its own (its spans carry
the event id as ``medic.event_id``).

Off (the default), nothing of OpenTelemetry is imported: ``span`` returns one shared
no-op context manager, ``current_context`` returns None, ``remember`` returns at once
and no interceptor is added.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Contexts kept for queued work, per process (about 200 bytes each).
REMEMBERED_MAX = 10_000

enabled = False
_tracer: Any = None
_provider: Any = None
_NO_SPAN = contextlib.nullcontext()
_remembered: collections.OrderedDict[str, Any] = collections.OrderedDict()
_remembered_lock = threading.Lock()


def configured(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


def setup(process: str) -> bool:
    """Turns tracing on for this process when an OTLP endpoint is configured."""
    global enabled, _tracer, _provider
    if enabled or not configured():
        return enabled
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    _provider = TracerProvider(resource=Resource.create({"service.name": f"medic-{process}"}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    _tracer = trace.get_tracer("medic")
    enabled = True
    endpoint = urlsplit(next(os.environ[n] for n in ENDPOINT_VARIABLES if os.environ.get(n)))
    # Scheme, host and port only: whatever else an endpoint carries stays out of the logs.
    log.info("tracing on: spans go to %s://%s%s", endpoint.scheme, endpoint.hostname or "",
             f":{endpoint.port}" if endpoint.port else "")
    return True


def shutdown() -> None:
    """Sends the spans still buffered (a process calls it as it stops)."""
    if enabled:
        _provider.shutdown()


# --- gRPC ------------------------------------------------------------------------------

def _not_health(details: Any) -> bool:
    # Probes and readiness checks ask health every few seconds: no trace for them.
    method = getattr(details, "method", "") or ""
    if isinstance(method, bytes):
        method = method.decode()
    return not method.startswith(("/grpc.health.v1.Health/", "/grpc.reflection."))


def server_interceptors() -> tuple:
    if not enabled:
        return ()
    from opentelemetry.instrumentation.grpc import server_interceptor

    return (server_interceptor(filter_=_not_health),)


def traced_channel(channel: Any) -> Any:
    """A sync channel whose calls get client spans and carry ``traceparent``."""
    if not enabled:
        return channel
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    return intercept_channel(channel, client_interceptor(filter_=_not_health))


def aio_client_interceptors() -> list:
    if not enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors as interceptors

    return list(interceptors(filter_=_not_health))


# --- spans ---------------------------------------------------------------------------------

def current_context() -> Any:
    """The active context (to continue it in another thread or task), or None when off."""
    if not enabled:
        return None
    from opentelemetry import context

    return context.get_current()


def span(name: str, *, parents: Sequence[Any] = (), keys: Iterable[str] = (),
         attributes: Mapping[str, Any] | None = None):
    """A context manager: an internal span named ``name``, child of the current span, or of
    the first of ``parents`` (contexts from ``current_context``) or of the contexts
    remembered under ``keys``; the other parents become links."""
    if not enabled:
        return _NO_SPAN
    return _span(name, parents, keys, attributes)


@contextlib.contextmanager
def _span(name: str, parents: Sequence[Any], keys: Iterable[str], attributes: Mapping[str, Any] | None):
    from opentelemetry import trace

    found = [c for c in parents if c is not None]
    if keys:
        with _remembered_lock:
            found += [_remembered[k] for k in keys if k in _remembered]
    parent = found[0] if found else None
    links = []
    for other in found[1:]:
        context = trace.get_current_span(other).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    with _tracer.start_as_current_span(name, context=parent, links=links, attributes=attributes) as current:
        yield current


def remember(*keys: str) -> None:
    """Keeps the current context under each key, for ``span(keys=...)`` later."""
    if not enabled:
        return
    from opentelemetry import context

    current = context.get_current()
    with _remembered_lock:
        for key in keys:
            _remembered[key] = current
            _remembered.move_to_end(key)
        while len(_remembered) > REMEMBERED_MAX:
            _remembered.popitem(last=False)


# --- HTTP (the gateway) ------------------------------------------------------------------------

def start_http(headers: Mapping[str, str], method: str, route: str) -> Any:
    """Starts the server span of an HTTP request, continuing the caller's ``traceparent``,
    and makes it current; returns what ``end_http`` needs (None when off)."""
    if not enabled:
        return None
    from opentelemetry import context, propagate, trace

    parent = propagate.extract(headers)
    current = _tracer.start_span(f"{method} {route}", context=parent, kind=trace.SpanKind.SERVER,
                                 attributes={"http.request.method": method, "http.route": route})
    return current, context.attach(trace.set_span_in_context(current, parent))


def end_http(started: Any, status: int) -> None:
    if started is None:
        return
    from opentelemetry import context, trace

    current, token = started
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(trace.Status(trace.StatusCode.ERROR))
    current.end()
    context.detach(token)


# --- logs ------------------------------------------------------------------------------------------

def log_fields() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current span, for a log line ({} when none)."""
    if not enabled:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
