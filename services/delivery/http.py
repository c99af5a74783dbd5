"""The HTTP transport the senders share: one POST, timed, no redirects,
classified by the generic rules (2xx success; connection error, timeout, 408,
429 and 5xx retryable; anything else permanent). A sender refines the
classification for its API (Slack's `ok`, PagerDuty's 202).

A POST ends by its deadline, `timeout` after it starts, whatever the receiver
does: a socket's timeout bounds each read only, so a receiver sending a byte now
and then would otherwise hold a worker past the delivery's lease, and another
worker would send it again. One watchdog thread per process (``_Watchdog``)
shuts down the socket of a request still running at its deadline (sending the
request, reading headers and body); the attempt is then a retryable timeout. The
watchdog looks every CHECK_SECONDS, so a cut-off comes up to that much late.
Connecting is bounded by the same deadline: each TCP connect gets what is left of
it, no further address of the host is tried once it has passed, and a TLS
handshake (bounded as a whole by its socket's timeout) gets what is left once
connected. Not bounded: the DNS lookup, where the system resolver's own timeouts
apply; it uses up the deadline, and one that outlasts it ends the attempt as soon
as it returns.

A connection is watched only while its request runs: it leaves the deadline under
the watchdog's lock before it goes back to the pool (urllib3 returns it from inside
the read of a body whose end it knows), so a deadline never cuts off a connection
another request has taken since. An answer read to the end its framing declares (a
Content-Length or the last chunk) counts even if the deadline struck meanwhile."""
from __future__ import annotations

import heapq
import itertools
import json
import socket
import threading
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


class DeadlinePassed(Exception):
    """A request was cut off at its deadline."""


class _Deadline:
    """One request's end: the connection it runs on (once it has one), the socket
    its answer is read from, and whether the watchdog had to cut it off."""
    __slots__ = ("at", "connection", "sock", "cut_off", "done")

    def __init__(self, at: float):
        self.at = at
        self.connection: urllib3.connection.HTTPConnection | None = None
        # Kept apart from the connection: http.client lets go of the connection's
        # socket before the body of a "Connection: close" answer is read.
        self.sock: socket.socket | None = None
        self.cut_off = False
        self.done = False


class _Watchdog:
    """Shuts down the socket of every request still running at its deadline: the
    blocked read (of headers or body) ends at once, and the request fails.
    Deadlines are checked at most every CHECK_SECONDS (a cut-off may come that much
    late), so a busy process wakes the thread a few times a second, not per request."""

    CHECK_SECONDS = 0.1

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._current = threading.local()  # the deadline of this thread's request

    def start(self, seconds: float) -> _Deadline:
        """Watches the request this thread is about to make."""
        deadline = _Deadline(time.monotonic() + seconds)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delivery-http-deadlines",
                                                daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._cond.notify()
        self._current.deadline = deadline
        return deadline

    def time_left(self) -> float | None:
        """Seconds until this thread's request's deadline (None: not watched)."""
        deadline = getattr(self._current, "deadline", None)
        return None if deadline is None else deadline.at - time.monotonic()

    def attach(self, connection: urllib3.connection.HTTPConnection,
               sock: socket.socket | None = None) -> None:
        """Called by a connection about to send this thread's request, and with its
        socket about to read the answer."""
        deadline = getattr(self._current, "deadline", None)
        if deadline is None:
            return
        with self._cond:
            if deadline.done:
                return
            deadline.connection = connection
            deadline.sock = sock or deadline.sock
            connection._medic_deadline = deadline

    def release(self, connection: urllib3.connection.HTTPConnection) -> bool:
        """The connection goes back to its pool: from now on no deadline touches it.
        True when it was cut off (it must not be used again)."""
        with self._cond:
            deadline = getattr(connection, "_medic_deadline", None)
            connection._medic_deadline = None
            if deadline is None or deadline.connection is not connection:
                return False
            deadline.connection = deadline.sock = None
            return deadline.cut_off

    def end(self, deadline: _Deadline) -> bool:
        """The request is over (its connection is never touched again); True when
        it was cut off."""
        self._current.deadline = None
        with self._cond:
            deadline.done = True
            if deadline.connection is not None:
                deadline.connection._medic_deadline = None
            deadline.connection = deadline.sock = None
            return deadline.cut_off

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, deadline = heapq.heappop(self._heap)
                    if not deadline.done and not self._cut_off(deadline):
                        # Connecting (bounded by the deadline too), or its
                        # connection back in the pool: look again.
                        heapq.heappush(self._heap, (now + self.CHECK_SECONDS, next(self._order), deadline))
                wait = max(self.CHECK_SECONDS, self._heap[0][0] - now) if self._heap else None
                self._cond.wait(wait)

    @staticmethod
    def _cut_off(deadline: _Deadline) -> bool:
        sock = deadline.sock or (deadline.connection.sock if deadline.connection is not None else None)
        if sock is None:
            return False
        deadline.cut_off = True
        try:
            # The plain socket's shutdown, also under TLS: the blocked reader then
            # sees the connection end (ssl's own shutdown would tear its state down
            # under the reader's feet).
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # closed meanwhile: the request is ending anyway
        return True


_WATCHDOG = _Watchdog()


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """Tells the watchdog which connection carries this thread's request, and
    connects by the request's deadline."""

    def _addresses(self) -> list[str]:
        """The addresses to try, in order."""
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port,
                                       urllib3.util.connection.allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        return list(dict.fromkeys(info[4][0] for info in infos))

    def _new_conn(self) -> socket.socket:
        error: OSError = OSError(f"{self.host} has no address")
        for address in self._addresses():
            timeout = self.timeout
            left = _WATCHDOG.time_left()
            if left is not None:
                if left <= 0:
                    error = TimeoutError("deadline passed")
                    break
                timeout = min(timeout, left) if isinstance(timeout, (int, float)) else left
            try:
                sock = urllib3.util.connection.create_connection(
                    (address, self.port), timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
            except OSError as exc:
                error = exc
                continue
            left = _WATCHDOG.time_left()
            if left is not None:
                # What follows before the request (a TLS handshake, bounded as a
                # whole by the socket's timeout) ends by the deadline too.
                sock.settimeout(max(left, 0.001))
            return sock
        if isinstance(error, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"connection to {self.host} timed out (connect timeout={self.timeout})") from error
        raise urllib3.exceptions.NewConnectionError(
            self, f"failed to establish a new connection: {error}") from error

    def request(self, *args, **kwargs):
        _WATCHDOG.attach(self)
        return super().request(*args, **kwargs)

    def getresponse(self):
        _WATCHDOG.attach(self, self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedHTTPConnection, urllib3.connection.HTTPSConnection):
    pass


class _PinnedHTTPConnection(_WatchedHTTPConnection):
    """Connects only to an address that passed the SSRF guard, resolved here, once:
    another lookup between a check and the connect could answer differently. The
    connection keeps its host name (Host header, TLS SNI and certificate check)."""

    def _addresses(self) -> list[str]:
        return [ssrf.public_address(self._dns_host, self.port)]


class _PinnedHTTPSConnection(_PinnedHTTPConnection, _WatchedHTTPSConnection):
    """The same for TLS; the certificate is still checked against the URL's host name."""


class _WatchedPool(urllib3.HTTPConnectionPool):
    """Takes a connection away from its request's deadline before it goes back to
    the pool (urllib3 puts it back from inside the read of a body whose end it
    knows, before the request's end is told to the watchdog)."""

    def _put_conn(self, conn) -> None:
        if conn is not None and _WATCHDOG.release(conn):
            conn.close()  # cut off: the next request opens a new one
        super()._put_conn(conn)


class _WatchedHTTPPool(_WatchedPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _PinnedHTTPPool(_WatchedPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
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
    else:
        manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
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
    """One POST, ended after `timeout` in total (DeadlinePassed)."""
    deadline = _WATCHDOG.start(timeout)
    raw = None
    try:
        try:
            raw = pool(public_only).request(
                "POST", url, body=body, headers={"User-Agent": USER_AGENT, **headers},
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False, retries=False, preload_content=False)
            content = raw.read(MAX_RESPONSE_BYTES + 1)
        finally:
            cut_off = _WATCHDOG.end(deadline)
    except Exception as exc:
        if raw is not None:
            raw.close()
        if cut_off:
            raise DeadlinePassed() from exc
        raise
    too_long = len(content) > MAX_RESPONSE_BYTES
    # A cut-off body may look complete (a response without a length ends where
    # the connection does), so such an answer does not count; one read to the end
    # its framing declares (a cut before that end is an error) is whole.
    whole = not too_long and (raw.chunked or raw.length_remaining == 0)
    if cut_off and not whole:
        raw.close()
        raise DeadlinePassed()
    if too_long or cut_off:
        raw.close()  # the rest is not worth reading, or the connection was cut: drop it
    else:
        raw.release_conn()
    return Response(raw.status, raw.headers, content[:MAX_RESPONSE_BYTES])


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
    except (urllib3.exceptions.TimeoutError, DeadlinePassed):
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
