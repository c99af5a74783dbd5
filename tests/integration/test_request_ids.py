"""A request id given to the gateway (or generated there) is in the log lines of
the services the request reached."""
from __future__ import annotations

import io
import json
import logging

from medic.logs import JsonFormatter


def test_request_id_crosses_from_http_to_the_services_logs(http):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    interceptor_log = logging.getLogger("medic.interceptors")
    old_level = interceptor_log.level
    root.addHandler(handler)
    interceptor_log.setLevel(logging.DEBUG)
    try:
        response = http.post("/service", headers={"x-request-id": "trace-abc123"}, json={
            "heartbeat_name": "web", "service_name": "web", "alert_interval": 1})
        assert response.status_code == 201 and response.headers["x-request-id"] == "trace-abc123"
        generated = http.get("/service/web").headers["x-request-id"]
    finally:
        root.removeHandler(handler)
        interceptor_log.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == "trace-abc123"]
    assert any("RegisterService OK" in line["message"] for line in mine), lines
    assert any("GetService OK" in line["message"] and line["request_id"] == generated for line in lines)
