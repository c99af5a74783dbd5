"""The HTTP transport the senders share: one POST, timed, no redirects,
classified by the generic rules (2xx success; connection error, timeout, 408,
429 and 5xx retryable; anything else permanent). A sender refines the
classification for its API (Slack's `ok`, PagerDuty's 202)."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util.connection

from services.delivery import ssrf
from services.delivery.model import AttemptResult, Outcome, truncate_body
from services.delivery.retry import parse_retry_after

RETRYABLE_CODES = {408, 429}

_sessions = threading.local()


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


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}


def session(public_only: bool = False) -> requests.Session:
    """One keep-alive session per worker thread (Session is not thread-safe); with
    ``public_only`` its connections go only to public addresses (webhooks)."""
    name = "public_only" if public_only else "session"
    current = getattr(_sessions, name, None)
    if current is None:
        current = requests.Session()
        current.trust_env = False  # no proxies from the environment for webhooks
        if public_only:
            current.mount("http://", _PinnedAdapter())
            current.mount("https://", _PinnedAdapter())
        setattr(_sessions, name, current)
    return current


def classify_status(code: int) -> Outcome:
    if 200 <= code < 300:
        return Outcome.SUCCESS
    if code in RETRYABLE_CODES or code >= 500:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float, *,
         public_only: bool = False) -> tuple[requests.Response | None, AttemptResult]:
    """POSTs and returns (response or None, generic result); ``public_only``
    refuses to connect to a non-public address (see ``ssrf``)."""
    started = time.monotonic()
    try:
        response = session(public_only).post(url, data=body, headers=dict(headers), timeout=timeout,
                                             allow_redirects=False)
    except ssrf.UnresolvableHost as exc:
        return None, AttemptResult(Outcome.RETRYABLE, error=str(exc), latency_ms=_ms(started))
    except ssrf.UnsafeDestination as exc:
        return None, AttemptResult(Outcome.PERMANENT, error=f"refused: {exc}", latency_ms=_ms(started))
    except requests.Timeout:
        return None, AttemptResult(Outcome.RETRYABLE, error=f"timeout after {timeout:g} s",
                                   latency_ms=_ms(started))
    except requests.ConnectionError as exc:
        return None, AttemptResult(Outcome.RETRYABLE, error=f"connection error: {_short(exc)}",
                                   latency_ms=_ms(started))
    except requests.RequestException as exc:
        return None, AttemptResult(Outcome.PERMANENT, error=f"request error: {_short(exc)}",
                                   latency_ms=_ms(started))
    outcome = classify_status(response.status_code)
    error = "" if outcome is Outcome.SUCCESS else f"HTTP {response.status_code}"
    if 300 <= response.status_code < 400:
        error = f"HTTP {response.status_code}: redirects are not followed"
    return response, AttemptResult(
        outcome, response_code=response.status_code,
        response_body=truncate_body(response.text or ""), error=error, latency_ms=_ms(started),
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
