"""Playbook documents the tests and the benchmarks run, and waiting for an execution."""
from __future__ import annotations

import time


def restart_playbook(name: str, url: str, service_pattern: str, more_steps: str = "") -> str:
    """A playbook that alerts of the services matching ``service_pattern`` start
    at their first failure: a webhook to ``url`` whose body names the service
    and the alert, a 1 s wait, then ``more_steps`` (YAML list items)."""
    return f"""
name: {name}
description: Restart a worker that stopped sending heartbeats
approval: none
trigger:
  service_pattern: "{service_pattern}"
  consecutive_failures: 1
steps:
  - name: restart
    type: webhook
    url: {url}
    body:
      service: ${{SERVICE_NAME}}
      alert: ${{ALERT_ID}}
  - name: settle
    type: wait
    duration: 1s
{more_steps}"""


def wait_for_status(http, execution_id: int, *statuses: str, timeout: float = 15.0) -> dict:
    """The execution (``GET /v2/executions/<id>``) once its status is one of
    ``statuses``, or as it is after ``timeout`` s (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        execution = http.get(f"/v2/executions/{execution_id}").json()["results"]
        if execution["status"] in statuses or time.monotonic() > deadline:
            return execution
        time.sleep(0.1)
