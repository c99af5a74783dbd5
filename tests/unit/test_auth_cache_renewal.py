"""Renewal of cached API keys: a key in use is verified again in the background
before its cache entry ends, so requests never wait for the auth service once the
key is cached (before, every request with the key waited for one Authorize, and
its argon2, every TTL: the ~100 ms p99 of the HTTP ingest benchmark).

An in-test verifier stands in for the auth service; each of its answers after
the first waits until the test releases it, so "no request waited" is shown by
requests answering while a renewal is still held."""
from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from medic import metrics
from medic.authz import AsyncCachedVerifier, CachedVerifier, GrantCache, KeyGrant, Verdict
from medic.errors import Unavailable
from services.auth.keys import new_key

TTL = 2.0          # renewal is due after 1.5 s (the last quarter of the entry's life)
RENEW_DUE = 1.55


def grant(scopes=("read",), expires_at=None):
    return Verdict(None, KeyGrant(key_id="abcdefghijkl", name="ci", scopes=frozenset(scopes),
                                  heartbeat_per_minute=100, management_per_minute=20,
                                  expires_at=expires_at))


class HeldVerifier:
    """Answers the first question at once; every later one waits for ``release``."""

    def __init__(self, first: Verdict):
        self.first = first
        self.calls = 0
        self.asked = threading.Event()
        self.gate = threading.Event()
        self.answer: Verdict | Exception = first

    def verify(self, key, client_address=""):
        self.calls += 1
        if self.calls > 1:
            self.asked.set()
            assert self.gate.wait(5), "the test never released the renewal"
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def release(self, answer: Verdict | Exception):
        self.answer = answer
        self.gate.set()


class AsyncHeldVerifier(HeldVerifier):
    async def verify(self, key, client_address=""):
        return await asyncio.to_thread(HeldVerifier.verify, self, key)


def renewals() -> float:
    return metrics.AUTH_CACHE_LOOKUPS.labels("renew")._value.get()


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def cached_key_due_for_renewal() -> tuple[str, HeldVerifier, CachedVerifier]:
    """A key verified once (at once), then left until its renewal is due."""
    key = new_key()[1]
    inner = HeldVerifier(grant())
    cached = CachedVerifier(inner, ttl=TTL)
    assert cached.verify(key) == grant()
    time.sleep(RENEW_DUE)
    return key, inner, cached


def test_a_key_in_use_is_renewed_in_the_background_and_answered_meanwhile():
    key, inner, cached = cached_key_due_for_renewal()
    before = renewals()
    # Renewal due: this request starts it and is answered from the cache at once;
    # so are the next ones, while the renewal is held; none starts another.
    for _ in range(20):
        assert cached.verify(key) == grant()
    assert inner.asked.wait(2)
    assert renewals() == before + 1 and inner.calls == 2
    renewed = grant(scopes=("read", "write"))
    inner.release(renewed)
    wait_until(lambda: cached.verify(key) == renewed)
    # Past the first entry's end, the renewed one answers: no request waits.
    time.sleep(TTL - RENEW_DUE)
    assert cached.verify(key) == renewed and inner.calls == 2


def test_a_renewal_that_finds_the_key_revoked_stops_it_at_once():
    key, inner, cached = cached_key_due_for_renewal()
    assert cached.verify(key) == grant()
    assert inner.asked.wait(2)
    inner.release(Verdict("revoked_key"))
    wait_until(lambda: cached.renewing == 0)
    assert cached.verify(key).reason == "revoked_key"  # before the entry would have ended


def test_a_failed_renewal_leaves_the_entry_to_end_as_planned(caplog):
    key, inner, cached = cached_key_due_for_renewal()
    with caplog.at_level(logging.WARNING, logger="medic.authz"):
        assert cached.verify(key) == grant()
        inner.release(Unavailable("auth service unavailable (UNAVAILABLE)"))
        wait_until(lambda: "renewing a cached API key failed" in caplog.text)
    assert key not in caplog.text
    assert cached.verify(key) == grant()  # still within the entry's life, no second renewal
    assert inner.calls == 2
    time.sleep(TTL - RENEW_DUE)
    with pytest.raises(Unavailable):
        cached.verify(key)  # ended: a plain miss, which asks (and fails) in the open
    assert inner.calls == 3


def test_a_renewal_begun_before_a_revocation_here_is_not_stored():
    key, inner, cached = cached_key_due_for_renewal()
    cached.verify(key)
    assert inner.asked.wait(2)
    cached.invalidate_key_id("abcdefghijkl")  # revoked in this process meanwhile
    inner.release(grant(scopes=("admin",)))  # the answer read before the revocation
    wait_until(lambda: cached.renewing == 0)
    # The stale answer was dropped: the next request asks again.
    inner.answer = Verdict("revoked_key")
    assert cached.verify(key).reason == "revoked_key"
    assert inner.calls == 3


def test_the_gateways_async_cache_renews_in_the_background_too():
    key = new_key()[1]
    inner = AsyncHeldVerifier(grant())

    async def scenario():
        cached = AsyncCachedVerifier(inner, ttl=TTL)
        assert await cached.verify(key) == grant()
        await asyncio.sleep(RENEW_DUE)
        for _ in range(20):
            assert await cached.verify(key) == grant()
        await asyncio.to_thread(inner.asked.wait, 2)
        assert inner.calls == 2
        renewed = grant(scopes=("write",))
        inner.release(renewed)
        for _ in range(500):
            if await cached.verify(key) == renewed:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(TTL - RENEW_DUE)
        assert await cached.verify(key) == renewed and inner.calls == 2

    asyncio.run(scenario())


def test_an_answer_asked_earlier_never_replaces_one_asked_later():
    """A slow renewal arriving after a newer answer (say "revoked", stored by a miss
    once the entry ended) must not bring the old grant back."""
    cache = GrantCache(ttl=TTL)
    earlier = cache.asking()
    later = cache.asking()
    cache.put(b"k", Verdict("revoked_key"), later)
    cache.put(b"k", grant(), earlier)
    assert cache.get(b"k")[0].reason == "revoked_key"


def test_an_entry_lasts_the_ttl_from_when_it_was_asked_not_from_its_arrival():
    cache = GrantCache(ttl=0.3)
    asked = cache.asking()
    time.sleep(0.2)  # a slow answer
    cache.put(b"k", grant(), asked)
    time.sleep(0.15)
    assert cache.get(b"k") == (None, False)


def test_a_grant_ending_with_its_key_is_not_renewed():
    key = new_key()[1]
    inner = HeldVerifier(grant(expires_at=time.time() + TTL / 2))
    cached = CachedVerifier(inner, ttl=TTL)
    cached.verify(key)
    time.sleep(TTL / 2 * 0.9)  # past three quarters of its (shortened) life
    assert cached.verify(key).grant is not None
    assert inner.calls == 1 and cached.renewing == 0
