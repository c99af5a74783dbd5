"""The HTTP transport the senders share: one POST, timed, no redirects,
classified by the generic rules (2xx success; connection error, timeout, 408,
429 and 5xx retryable; anything else permanent). A sender refines the
classification for its API (Slack's `ok`, PagerDuty's 202)."""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from typing import Any

import certifi
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util.connection

from medic import ssrf
from services.delivery.model import AttemptResult, Outcome, truncate_body
from services.delivery.retry import parse_retry_after

RETRYABLE_CODES = {408, 429}
# What is read of a response: enough for any API's answer and the recorded
# excerpt (4096 bytes); a receiver sending more has its connection closed.
MAX_RESPONSE_BYTES = 64 * 1024
# Kept-alive connections per destination; a busier destination opens more and
# closes the extra ones after use.
CONNECTIONS_PER_HOST = 32
USER_AGENT = "Medic-Delivery/1"


class _PinnedHTTPConnection(urllib3.connection.HTTPConnection):
    """Connects only to an address that passed the SSRF guard, resolved here, once:
    another lookup between a check and the connect could answer differently. The
    connection keeps its host name (Host header, TLS SNI and certificate check)."""

    def _new_conn(self) -> socket.socket:
        address = ssrf.public_address(self._dns_host, self.port)
        try:
            return urllib3.util.connection.create_connection(
                (address, self.port), self.timeout, source_address=self.source_address,
                socket_options=self.socket_options)
        except TimeoutError as exc:
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"connection to {self.host} timed out (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(
                self, f"failed to establish a new connection: {exc}") from exc


class _PinnedHTTPSConnection(_PinnedHTTPConnection, urllib3.connection.HTTPSConnection):
    """The same for TLS; the certificate is still checked against the URL's host name."""


class _PinnedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


def _pool_manager(public_only: bool) -> urllib3.PoolManager:
    # urllib3 directly, not requests: requests' session machinery (settings
    # merging, cookies, hooks, charset guessing) cost 0.7 ms of CPU per POST here,
    # about as much as urllib3's whole request. Certificates are checked against
    # certifi's bundle, as requests did; no proxies from the environment.
    manager = urllib3.PoolManager(num_pools=256, maxsize=CONNECTIONS_PER_HOST, block=False,
                                  cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    if public_only:
        manager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}
    return manager


# Thread-safe; one for any destination, one whose connections go only to public
# addresses (webhooks, see ``ssrf``).
_MANAGERS = {False: _pool_manager(False), True: _pool_manager(True)}


def pool(public_only: bool = False) -> urllib3.PoolManager:
    return _MANAGERS[public_only]


class Response:
    """What a sender sees of an answer: status, headers and (at most
    MAX_RESPONSE_BYTES of) the body."""

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes):
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def classify_status(code: int) -> Outcome:
    if 200 <= code < 300:
        return Outcome.SUCCESS
    if code in RETRYABLE_CODES or code >= 500:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def _request(url: str, body: bytes, headers: Mapping[str, str], timeout: float,
             public_only: bool) -> Response:
    raw = pool(public_only).request("POST", url, body=body, headers={"User-Agent": USER_AGENT, **headers},
                                    timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                    redirect=False, retries=False, preload_content=False)
    complete = False
    try:
        content = raw.read(MAX_RESPONSE_BYTES + 1)
        complete = len(content) <= MAX_RESPONSE_BYTES
        return Response(raw.status, raw.headers, content[:MAX_RESPONSE_BYTES])
    finally:
        if complete:
            raw.release_conn()
        else:  # the rest is not worth reading: drop the connection
            raw.close()


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float, *,
         public_only: bool = False) -> tuple[Response | None, AttemptResult]:
    """POSTs and returns (response or None, generic result); ``public_only``
    refuses to connect to a non-public address (see ``ssrf``)."""
    started = time.monotonic()
    try:
        response = _request(url, body, headers, timeout, public_only)
    except ssrf.UnresolvableHost as exc:
        return None, AttemptResult(Outcome.RETRYABLE, error=str(exc), latency_ms=_ms(started))
    except ssrf.UnsafeDestination as exc:
        return None, AttemptResult(Outcome.PERMANENT, error=f"refused: {exc}", latency_ms=_ms(started))
    except urllib3.exceptions.NewConnectionError as exc:
        return None, AttemptResult(Outcome.RETRYABLE, error=f"connection error: {_short(exc)}",
                                   latency_ms=_ms(started))
    except urllib3.exceptions.TimeoutError:
        return None, AttemptResult(Outcome.RETRYABLE, error=f"timeout after {timeout:g} s",
                                   latency_ms=_ms(started))
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError) as exc:
        return None, AttemptResult(Outcome.RETRYABLE, error=f"connection error: {_short(exc)}",
                                   latency_ms=_ms(started))
    except (urllib3.exceptions.HTTPError, ValueError) as exc:  # a malformed URL, say
        return None, AttemptResult(Outcome.PERMANENT, error=f"request error: {_short(exc)}",
                                   latency_ms=_ms(started))
    outcome = classify_status(response.status_code)
    error = "" if outcome is Outcome.SUCCESS else f"HTTP {response.status_code}"
    if 300 <= response.status_code < 400:
        error = f"HTTP {response.status_code}: redirects are not followed"
    return response, AttemptResult(
        outcome, response_code=response.status_code,
        response_body=truncate_body(response.text), error=error, latency_ms=_ms(started),
        retry_after=parse_retry_after(response.headers.get("Retry-After")))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _short(exc: BaseException) -> str:
    """The root cause's kind and message, never the URL (a query may hold a token)."""
    seen = set()
    cause: BaseException = exc
    while id(cause) not in seen:
        seen.add(id(cause))
        nested = cause.__cause__ or cause.__context__ or next(
            (a for a in getattr(cause, "args", ()) if isinstance(a, BaseException)), None)
        reason = getattr(cause, "reason", None)
        nested = nested or (reason if isinstance(reason, BaseException) else None)
        if nested is None:
            break
        cause = nested
    if isinstance(cause, OSError) and cause.strerror:
        return f"{type(cause).__name__}: {cause.strerror}"
    return type(cause).__name__
