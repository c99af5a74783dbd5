"""What each step type does, one call at a time (the engine decides when).

* webhook: one HTTP request (no redirects) to the step's URL after
  substitution, through the SSRF guard (``medic/ssrf.py``: the host must
  resolve only to public addresses unless MEDIC_WEBHOOK_ALLOW_PRIVATE, and the
  connection goes to the very address that was checked). Success is a status
  in ``success_codes``. The request carries ``Idempotency-Key:
  medic-execution-<id>-step-<index>``: a step interrupted by a crash is sent
  again on resume, and a receiver can tell.
* script: see ``scripts.py``.
* wait: done once ``duration`` has passed since the step started.
* condition ``heartbeat_received``: done once the service got a heartbeat
  after the step started (asked from the heartbeat service); past ``timeout``,
  ``on_failure`` decides: fail (the execution fails), continue (the step counts
  as done), escalate (the execution fails, marked for escalation).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from medic import ssrf
from services.remediation.variables import redact

log = logging.getLogger(__name__)
# urllib3 logs each request line (with its query string) at DEBUG: a webhook step's URL
# may carry a secret, so its records stay out of the logs even with MEDIC_LOG_LEVEL=DEBUG.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

MAX_RESPONSE_BYTES = 64 * 1024
OUTPUT_EXCERPT = 4096
USER_AGENT = "Medic-Remediation/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str = ""
    error: str = ""


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: dict | None
    timeout: float
    idempotency_key: str


class WebhookSender:
    """Sends webhook steps' requests, each to an address the SSRF guard passed."""

    def __init__(self, *, allow_private: bool):
        self.allow_private = allow_private
        self._pool = urllib3.PoolManager(num_pools=16, maxsize=8, retries=False)

    def send(self, request: Request, shown_url: str, success_codes: list[int], secrets: list[str]) -> Outcome:
        """``shown_url``: the URL as it may be shown (its secrets not substituted)."""
        try:
            host, port = ssrf.check_url_shape(request.url)
            address = host if self.allow_private else ssrf.public_address(host, port)
        except ssrf.UnsafeDestination as exc:
            return Outcome(False, error=redact(f"refused destination: {exc}", secrets))
        parts = urlsplit(request.url)
        headers = {"User-Agent": USER_AGENT, "Idempotency-Key": request.idempotency_key, **request.headers}
        body = None
        if request.body is not None:
            body = json.dumps(request.body).encode()
            headers.setdefault("Content-Type", "application/json")
        timeout = urllib3.Timeout(connect=min(request.timeout, 10.0), read=request.timeout)
        try:
            if address == host:
                response = self._pool.request(request.method, request.url, body=body, headers=headers,
                                              timeout=timeout, redirect=False, preload_content=False)
            else:
                response = self._pinned(parts, host, port, address, request, body, headers, timeout)
            try:
                data = response.read(MAX_RESPONSE_BYTES, decode_content=True)
            finally:
                response.release_conn()
        except urllib3.exceptions.TimeoutError:
            return Outcome(False, error=f"request timed out after {request.timeout:g} s")
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(False, error=redact(f"request failed: {type(exc).__name__}", secrets))
        text = data.decode("utf-8", "replace")[:OUTPUT_EXCERPT]
        output = redact(f"HTTP {request.method} {shown_url}\nStatus: {response.status}\nResponse: {text}", secrets)
        if response.status in success_codes:
            return Outcome(True, output)
        return Outcome(False, output, f"unexpected status code {response.status}, expected one of {success_codes}")

    def _pinned(self, parts, host, port, address, request: Request, body, headers, timeout):
        """Connects to ``address`` (the one the guard checked), speaking to ``host``."""
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1], **headers}
        if parts.scheme == "https":
            import certifi

            pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=host, assert_hostname=host,
                                               cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                                               retries=False, maxsize=1)
        else:
            pool = urllib3.HTTPConnectionPool(address, port, retries=False, maxsize=1)
        return pool.urlopen(request.method, path, body=body, headers=headers, timeout=timeout,
                            redirect=False, preload_content=False, assert_same_host=False)


def heartbeat_received(last_heartbeat_at: dt.datetime | None, since: dt.datetime) -> bool:
    """The condition ``heartbeat_received``: a heartbeat came after ``since``."""
    return last_heartbeat_at is not None and last_heartbeat_at > since
