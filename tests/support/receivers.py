"""Local stand-ins for the services Medic talks to over HTTP (Slack, PagerDuty,
webhook receivers): real HTTP servers on loopback that record what they receive
and answer as scripted::

    with WebhookReceiver() as hook:
        hook.script(Reply(500), Reply(500), Reply(200))   # then the default
        ... point Medic at hook.url ...
        requests = hook.wait_for(3, timeout=10)

A receiver answers each request with the next scripted ``Reply`` (or the
result of a scripted callable), and with its default reply once the script is
used up. A reply can make the receiver sleep first (a slow endpoint). Requests
are recorded when they arrive, before the reply, so a test can count attempts
that timed out too.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of new connections from
    # Medic's delivery workers (32 at once in some tests) overflowed it, and a
    # dropped connection attempt was retried by the client a second later.
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False


@dataclass(frozen=True)
class Reply:
    status: int = 200
    # bytes/str sent as is; dict/list sent as JSON.
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to sleep before answering.
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, (dict, list)):
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(self.body).encode(), headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        return bytes(self.body), headers


def slack_error(error: str, status: int = 200) -> Reply:
    """A Slack Web API failure, e.g. slack_error("channel_not_found")."""
    return Reply(status, {"ok": False, "error": error})


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    # Header names lower-cased.
    headers: dict[str, str]
    body: bytes
    # time.monotonic() at arrival.
    received_at: float
    # The client's source port: requests that share one may share a connection
    # (two that differ came on different connections).
    client_port: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


Script = Reply | Callable[[ReceivedRequest], Reply]


class Receiver:
    """A recording HTTP server on 127.0.0.1 (port 0 = any free port)."""

    default_reply = Reply(200, {"ok": True})

    def __init__(self, port: int = 0, default: Reply | None = None):
        self.default = default or self.default_reply
        self._script: deque[Script] = deque()
        self._requests: list[ReceivedRequest] = []
        self._cond = threading.Condition()
        self._server = _Server(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    # --- life cycle ----------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"{type(self).__name__}-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- scripting -------------------------------------------------------------
    def script(self, *replies: Script) -> "Receiver":
        """Answers the next requests with these, in order (then the default)."""
        with self._cond:
            self._script.extend(replies)
        return self

    def always(self, reply: Reply) -> "Receiver":
        """Changes the default reply."""
        with self._cond:
            self.default = reply
        return self

    # --- what arrived ---------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._cond:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """The first `count` requests; AssertionError if they do not arrive in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{type(self).__name__} got {len(self._requests)} "
                                         f"requests, expected {count} within {timeout} s")
                self._cond.wait(left)
            return list(self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()
            self._script.clear()

    # --- plumbing ---------------------------------------------------------------
    def _next_reply(self, request: ReceivedRequest) -> Reply:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
            item = self._script.popleft() if self._script else self.default
        return item(request) if callable(item) else item

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive

            def do_POST(self):
                self._handle()

            def do_GET(self):
                self._handle()

            def do_PUT(self):
                self._handle()

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(
                    method=self.command, path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                    received_at=time.monotonic(), client_port=self.client_address[1])
                reply = receiver._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload, headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); that is what the test wanted

            def log_message(self, format, *args):  # keep test output quiet
                pass

        return Handler


class WebhookReceiver(Receiver):
    """A webhook endpoint: 200 with an empty JSON object unless scripted."""
    default_reply = Reply(200, {})


class SlackReceiver(Receiver):
    """The Slack Web API: POST {url}/chat.postMessage answers ok:true unless scripted.
    Point MEDIC_SLACK_API_URL at `receiver.url`."""
    default_reply = Reply(200, {"ok": True, "channel": "C0", "ts": "1700000000.000100"})

    @property
    def posted(self) -> list[str]:
        """Channels that got a chat.postMessage, in arrival order."""
        return [r.json()["channel"] for r in self.requests if r.path.endswith("/chat.postMessage")]


class PagerDutyReceiver(Receiver):
    """The PagerDuty Events API v2: 202 unless scripted. Point
    MEDIC_PAGERDUTY_EVENTS_URL at `receiver.events_url`."""
    default_reply = Reply(202, {"status": "success", "message": "Event processed"})

    @property
    def events_url(self) -> str:
        return f"{self.url}/v2/enqueue"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span an OTLP exporter sent, with the service (resource) that made it."""
    service: str
    name: str
    trace_id: str  # 32 hex digits
    span_id: str   # 16 hex digits
    parent_span_id: str  # "" for a root span
    kind: int
    attributes: dict[str, Any]


class OtlpReceiver(Receiver):
    """An OpenTelemetry collector's OTLP/HTTP traces endpoint (POST /v1/traces, protobuf):
    decodes every ExportTraceServiceRequest with the opentelemetry-proto messages. Point
    OTEL_EXPORTER_OTLP_ENDPOINT at `receiver.url`."""
    default_reply = Reply(200, b"", {"Content-Type": "application/x-protobuf"})

    def spans(self) -> list[ReceivedSpan]:
        import gzip

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        found = []
        for request in self.requests:
            assert request.path == "/v1/traces", request.path
            assert request.header("content-type") == "application/x-protobuf"
            body = gzip.decompress(request.body) if request.header("content-encoding") == "gzip" else request.body
            export = ExportTraceServiceRequest.FromString(body)
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(ReceivedSpan(
                            service=resource.get("service.name", ""), name=span.name,
                            trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(), kind=span.kind,
                            attributes={a.key: _any_value(a.value) for a in span.attributes}))
        return found


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None
