"""Sliding-window maths and the in-memory limiter."""
from __future__ import annotations

import threading
from collections import deque

from medic.ratelimit import InMemoryRateLimiter, admit, window_status


def test_requests_pass_until_the_limit_then_are_refused_with_retry_after():
    log: deque[float] = deque()
    results = [admit(log, 1000.0 + i, limit=3, window=60) for i in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    refused = results[-1]
    assert refused.reset == 1060           # the first request leaves the window
    assert refused.retry_after == 57       # 1060 - 1003


def test_a_slot_frees_when_the_oldest_request_leaves_the_window():
    log: deque[float] = deque()
    for t in (0.0, 10.0):
        admit(log, t, limit=2, window=60)
    assert not admit(log, 59.9, limit=2, window=60).allowed
    assert admit(log, 60.0, limit=2, window=60).allowed
    assert not admit(log, 60.5, limit=2, window=60).allowed


def test_refused_requests_are_not_counted():
    log: deque[float] = deque()
    admit(log, 0.0, limit=1, window=60)
    for t in range(1, 50):
        admit(log, float(t), limit=1, window=60)
    assert list(log) == [0.0]


def test_headers_carry_retry_after_only_when_refused():
    allowed = window_status(True, 1, 100.0, 100.0, 5, 60)
    refused = window_status(False, 5, 100.0, 130.2, 5, 60)
    assert dict(allowed.headers()) == {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                                       "X-RateLimit-Reset": "160"}
    assert dict(refused.headers())["Retry-After"] == "30"
    assert ("retry-after", "30") in refused.trailers()


def test_exactly_limit_of_64_concurrent_requests_pass_in_memory():
    limiter = InMemoryRateLimiter()
    limit = 17
    start = threading.Barrier(64)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def request():
        start.wait(timeout=10)
        status = limiter.check("heartbeat:key:abc", limit)
        with lock:
            outcomes.append(status.allowed)

    threads = [threading.Thread(target=request) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(outcomes) == 64
    assert outcomes.count(True) == limit


def test_buckets_are_independent_and_idle_ones_are_swept():
    now = [0.0]
    limiter = InMemoryRateLimiter(window=60, clock=lambda: now[0])
    assert limiter.check("heartbeat:key:a", 1).allowed
    assert limiter.check("heartbeat:key:b", 1).allowed
    assert not limiter.check("heartbeat:key:a", 1).allowed
    now[0] = 200.0
    limiter.check("management:key:c", 1)
    assert set(limiter._buckets) == {"management:key:c"}


def test_asking_without_recording_counts_nothing():
    """How failures known only afterwards are limited: ask first, record after."""
    limiter = InMemoryRateLimiter()
    assert all(limiter.check("auth_failures:key:a", 2, record=False).allowed for _ in range(5))
    limiter.check("auth_failures:key:a", 2)
    limiter.check("auth_failures:key:a", 2)
    asked = limiter.check("auth_failures:key:a", 2, record=False)
    assert not asked.allowed and asked.retry_after >= 1
