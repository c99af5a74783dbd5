"""Sliding-window rate limits per (principal, class), in memory or in Redis.

The window is a log of admission times: a request passes when fewer than
``limit`` requests passed in the last ``WINDOW_SECONDS``; it is then recorded
(``record=False`` only asks whether one would pass, for counting after the fact
what is known only afterwards, e.g. failed key verifications).
Being a log (not an approximation), exactly ``limit`` requests pass per window,
also under concurrency: the in-memory backend checks and records under one
lock, the Redis backend in one atomic Lua script (a sorted set per bucket,
scored by Redis's own clock so that replicas with skewed clocks agree).

Backends (``limiter_from_settings``): ``InMemoryRateLimiter`` (default, one
process) and ``RedisRateLimiter`` / ``AsyncRedisRateLimiter`` when
``MEDIC_REDIS_URL`` is set (shared by every replica).

Redis outage: a monitor must not drop heartbeats because Redis is down, so the
Redis limiters *fail over to the process's in-memory limiter*: limits still hold
per replica (with N replicas up to N x limit pass) and nothing is refused for
lack of Redis. Each failed call counts in ``medic_redis_errors_total``; a
warning is logged at most every 30 s; Redis is retried after 1 s, so the
shared limit comes back by itself when Redis does. Nothing raises.
"""
from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio

from medic import metrics

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
REDIS_RETRY_SECONDS = 1.0
REDIS_TIMEOUT_SECONDS = 0.5
# Connections per limiter; more concurrent checks wait (up to the timeout) for one.
REDIS_MAX_CONNECTIONS = 32
_WARN_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class RateLimitStatus:
    """The figures of one check, for headers and trailers."""
    allowed: bool
    limit: int
    remaining: int
    reset: int          # unix seconds when the oldest counted request leaves the window
    retry_after: int    # seconds to wait when refused, else 0

    def headers(self) -> tuple[tuple[str, str], ...]:
        """HTTP headers: X-RateLimit-* always, Retry-After when refused."""
        figures = (("X-RateLimit-Limit", str(self.limit)),
                   ("X-RateLimit-Remaining", str(self.remaining)),
                   ("X-RateLimit-Reset", str(self.reset)))
        if not self.allowed:
            figures += (("Retry-After", str(self.retry_after)),)
        return figures

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """The same figures as gRPC metadata (lower-case keys)."""
        return tuple((k.lower(), v) for k, v in self.headers())


def window_status(allowed: bool, counted: int, oldest: float, now: float, limit: int,
                  window: float = WINDOW_SECONDS) -> RateLimitStatus:
    """Figures from the state of a window after a check: ``counted`` requests
    inside it, the oldest at ``oldest`` (unix seconds)."""
    frees_at = oldest + window
    return RateLimitStatus(
        allowed=allowed,
        limit=limit,
        remaining=max(limit - counted, 0),
        reset=math.ceil(frees_at),
        retry_after=0 if allowed else max(1, math.ceil(frees_at - now)),
    )


def admit(admitted: deque[float], now: float, limit: int,
          window: float = WINDOW_SECONDS, record: bool = True) -> RateLimitStatus:
    """One check against a window log (oldest first), recording the request when
    it passes (and ``record``). Pure apart from mutating ``admitted``; the caller
    serializes."""
    cutoff = now - window
    while admitted and admitted[0] <= cutoff:
        admitted.popleft()
    allowed = len(admitted) < limit
    if allowed and record:
        admitted.append(now)
    return window_status(allowed, len(admitted), admitted[0] if admitted else now, now, limit,
                         window)


def bucket_name(principal: str, rate_class: str) -> str:
    return f"{rate_class}:{principal}"


class RateLimiter(Protocol):
    def check(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus: ...

    async def acheck(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus: ...


class InMemoryRateLimiter:
    """One process's windows. Thread-safe: a check is a few list operations under
    one lock. Idle buckets are swept once per window."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time):
        self.window = window
        self.clock = clock
        self._buckets: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + window

    def check(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus:
        with self._lock:
            now = self.clock()
            if now >= self._next_sweep:
                self._sweep(now)
            admitted = self._buckets.get(bucket)
            if admitted is None:
                admitted = self._buckets[bucket] = deque()
            return admit(admitted, now, limit, self.window, record)

    async def acheck(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus:
        return self.check(bucket, limit, record=record)

    def _sweep(self, now: float) -> None:
        cutoff = now - self.window
        for name in [n for n, log_ in self._buckets.items() if not log_ or log_[-1] <= cutoff]:
            del self._buckets[name]
        self._next_sweep = now + self.window


# KEYS[1]: the bucket's sorted set; ARGV: limit, window (microseconds), unique member,
# "1" to record the request when it passes ("0": only ask).
# Returns {allowed, counted, oldest score, now}, times in microseconds of Redis's clock.
SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local counted = redis.call('ZCARD', KEYS[1])
local allowed = 0
if counted < limit then
  allowed = 1
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    counted = counted + 1
  end
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
local oldest_score = now
if oldest[2] then oldest_score = tonumber(oldest[2]) end
return {allowed, counted, tostring(oldest_score), tostring(now)}
"""

REDIS_KEY_PREFIX = "medic:ratelimit:"


def _status_from_redis(reply, limit: int, window: float) -> RateLimitStatus:
    allowed, counted, oldest, now = reply
    return window_status(bool(int(allowed)), int(counted), float(oldest) / 1e6,
                         float(now) / 1e6, limit, window)


class _RedisWindows:
    """What the sync and async Redis limiters share: the pool and script, the
    fallback to this process's windows, and when to try Redis again after it
    failed (counted, and logged sparingly)."""
    _client_module = redis

    def __init__(self, url: str, window: float = WINDOW_SECONDS,
                 fallback: InMemoryRateLimiter | None = None,
                 timeout: float = REDIS_TIMEOUT_SECONDS):
        self.window = window
        pool = self._client_module.BlockingConnectionPool.from_url(
            url, max_connections=REDIS_MAX_CONNECTIONS, timeout=timeout,
            socket_timeout=timeout, socket_connect_timeout=timeout)
        self.client = self._client_module.Redis(connection_pool=pool)
        self._script = self.client.register_script(SLIDING_WINDOW_LUA)
        self.fallback = fallback or InMemoryRateLimiter(window)
        self.retry_at = 0.0
        self._warned_at = -math.inf

    def _script_call(self, bucket: str, limit: int, record: bool) -> dict:
        return {"keys": [REDIS_KEY_PREFIX + bucket],
                "args": [limit, int(self.window * 1e6), secrets.token_hex(8), "1" if record else "0"]}

    def _redis_allowed(self) -> bool:
        return time.monotonic() >= self.retry_at

    def _failed(self, exc: Exception, bucket: str, limit: int, record: bool) -> RateLimitStatus:
        metrics.REDIS_ERRORS.labels("rate_limit").inc()
        now = time.monotonic()
        self.retry_at = now + REDIS_RETRY_SECONDS
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("redis unreachable (%s): rate limits fall back to this process's "
                        "in-memory limiter", type(exc).__name__)
        return self.fallback.check(bucket, limit, record=record)


class RedisRateLimiter(_RedisWindows):
    """Windows shared by every replica through Redis (one script call per check)."""

    def check(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus:
        if not self._redis_allowed():
            return self.fallback.check(bucket, limit, record=record)
        try:
            reply = self._script(**self._script_call(bucket, limit, record))
        except (redis.RedisError, OSError) as exc:
            return self._failed(exc, bucket, limit, record)
        return _status_from_redis(reply, limit, self.window)

    async def acheck(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus:
        raise TypeError("RedisRateLimiter is synchronous; use AsyncRedisRateLimiter")

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()


class AsyncRedisRateLimiter(_RedisWindows):
    """The asyncio form of ``RedisRateLimiter`` (redis.asyncio), for the gateway."""
    _client_module = redis.asyncio

    def check(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus:
        raise TypeError("AsyncRedisRateLimiter is asynchronous; use acheck or RedisRateLimiter")

    async def acheck(self, bucket: str, limit: int, *, record: bool = True) -> RateLimitStatus:
        if not self._redis_allowed():
            return self.fallback.check(bucket, limit, record=record)
        try:
            reply = await self._script(**self._script_call(bucket, limit, record))
        except (redis.RedisError, OSError) as exc:
            return self._failed(exc, bucket, limit, record)
        return _status_from_redis(reply, limit, self.window)

    async def aclose(self) -> None:
        await self.client.aclose(close_connection_pool=True)


def limiter_from_settings(settings, *, asynchronous: bool = False):
    """The process's limiter: Redis when MEDIC_REDIS_URL is set, else in memory."""
    if not settings.redis_url:
        return InMemoryRateLimiter()
    if asynchronous:
        return AsyncRedisRateLimiter(settings.redis_url)
    return RedisRateLimiter(settings.redis_url)
