"""The Redis rate limiter against the real Redis at 127.0.0.1:6379: exact under
concurrency, shared by replicas, and harmless when Redis is down."""
from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import redis

from medic import metrics
from medic.ratelimit import AsyncRedisRateLimiter, RedisRateLimiter
from tests.support.ports import free_port
from tests.support.tcpproxy import TcpProxy

# Generous, so that a loaded test machine is not mistaken for a Redis outage
# (which would serve some checks from the in-memory fallback).
TIMEOUT = 3.0


@pytest.fixture
def bucket(redis_url):
    name = f"heartbeat:key:test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(f"medic:ratelimit:{name}")
    client.close()


def concurrently(calls: int, check) -> list[bool]:
    start = threading.Barrier(calls)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def one(i: int):
        start.wait(timeout=10)
        allowed = check(i).allowed
        with lock:
            outcomes.append(allowed)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(outcomes) == calls
    return outcomes


def test_exactly_limit_of_64_concurrent_requests_pass_on_redis(redis_url, bucket):
    limiter = RedisRateLimiter(redis_url, timeout=TIMEOUT)
    try:
        outcomes = concurrently(64, lambda i: limiter.check(bucket, 23))
    finally:
        limiter.close()
    assert outcomes.count(True) == 23


def test_asking_redis_without_recording_counts_nothing(redis_url, bucket):
    limiter = RedisRateLimiter(redis_url, timeout=TIMEOUT)
    try:
        assert all(limiter.check(bucket, 2, record=False).allowed for _ in range(5))
        assert [limiter.check(bucket, 2).allowed for _ in range(3)] == [True, True, False]
        assert not limiter.check(bucket, 2, record=False).allowed
    finally:
        limiter.close()


def test_two_replicas_sharing_redis_hold_one_limit(redis_url, bucket):
    replicas = [RedisRateLimiter(redis_url, timeout=TIMEOUT), RedisRateLimiter(redis_url, timeout=TIMEOUT)]
    try:
        outcomes = concurrently(64, lambda i: replicas[i % 2].check(bucket, 30))
    finally:
        for r in replicas:
            r.close()
    assert outcomes.count(True) == 30


def test_async_limiter_is_exact_too(redis_url, bucket):
    async def main():
        limiter = AsyncRedisRateLimiter(redis_url, timeout=TIMEOUT)
        try:
            return await asyncio.gather(*(limiter.acheck(bucket, 11) for _ in range(64)))
        finally:
            await limiter.aclose()

    results = asyncio.run(main())
    assert sum(r.allowed for r in results) == 11
    refused = [r for r in results if not r.allowed]
    assert refused[0].remaining == 0 and refused[0].retry_after >= 1


def test_redis_outage_falls_back_to_the_in_memory_limit_and_is_counted():
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    before = metrics.REDIS_ERRORS.labels("rate_limit")._value.get()
    results = [limiter.check("heartbeat:key:outage", 3) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert metrics.REDIS_ERRORS.labels("rate_limit")._value.get() - before >= 1
    limiter.close()


def test_shared_limit_returns_when_redis_does(redis_url, bucket):
    import time
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname, parts.port or 6379)
    proxy.cut()
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{proxy.port}{parts.path}")
    client = redis.Redis.from_url(redis_url)
    try:
        limiter.check(bucket, 100)  # Redis "down": counted locally
        assert client.zcard(f"medic:ratelimit:{bucket}") == 0
        proxy.restore()
        time.sleep(1.1)  # past the retry pause
        limiter.check(bucket, 100)
        assert client.zcard(f"medic:ratelimit:{bucket}") == 1
        proxy.cut()
        assert limiter.check(bucket, 100).allowed  # no crash, served locally
    finally:
        limiter.close()
        client.close()
        proxy.close()
