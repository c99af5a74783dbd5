"""One JSON object per log line: time, level, service, logger, message, request_id,
and, while tracing is on, the trace_id and span_id of the current span.

The request id lives in a context variable: the server interceptor sets it from
the ``x-request-id`` metadata (or generates one), the gateway sets it from the
HTTP header, and the client interceptor forwards it on every outgoing RPC.
"""
from __future__ import annotations

import contextvars
import datetime
import itertools
import json
import logging
import sys
import uuid

from medic import tracing

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

REQUEST_ID_HEADER = "x-request-id"
_SERVICE = "medic"


# Unique ids without a system call per request (uuid4 reads os.urandom, 3 % of the
# gateway's time under load): a random prefix per process and a counter, 32 hex
# digits like a uuid4's.
_REQUEST_ID_PREFIX = uuid.uuid4().hex[:16]
_request_ids = itertools.count(1)


def new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_ids):016x}"


def clean_request_id(value: str | None) -> str:
    """A caller-supplied id is kept when it is short and printable, replaced otherwise."""
    if value and len(value) <= 128 and value.isprintable() and " " not in value:
        return value
    return new_request_id()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "service": _SERVICE,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        if tracing.enabled:
            entry.update(tracing.log_fields())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(service: str, level: str = "INFO") -> None:
    """Configures the root logger of a process to write JSON lines to stderr, and
    turns tracing on when an OTLP endpoint is configured (``medic.tracing``)."""
    global _SERVICE
    _SERVICE = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print one unstructured line per request.
    logging.getLogger("uvicorn.access").disabled = True
    tracing.setup(service)
