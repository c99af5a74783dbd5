"""The verified-key cache, and the verifiers in front of it.

A process asks the auth service about a key only on a cache miss; the answer
is kept by SHA-256 of the presented key for MEDIC_AUTH_CACHE_TTL_SECONDS
(never past the key's expiry), so a revocation applies everywhere within that
TTL. A key in use is renewed in the background in the last quarter of its
entry's life: once cached, it never makes a request wait. Refusals are cached
too (bounded), so a repeated bad key costs nothing either.

``CachedVerifier`` (threads) and ``AsyncCachedVerifier`` (the gateway's event
loop) share everything but how they wait: ``_CacheFront`` looks up, counts and
stores; each adds its own single-flight lock and its own way of renewing.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Protocol

from medic import metrics
from medic.authz.keys import INVALID_KEY, Verdict, key_digest, parse_key

CACHE_MAX_ENTRIES = 10_000
RENEW_SHARE = 0.25  # a grant in use is renewed in the last quarter of its life
RENEW_THREADS = 2  # per process (a thread pool; the gateway renews on its event loop)
RENEW_MAX_PENDING = 100  # beyond this many renewals queued, entries lapse into plain misses
_LOCK_STRIPES = 64

log = logging.getLogger(__name__)

_cache_lookups = metrics.labelled(metrics.AUTH_CACHE_LOOKUPS)


class Asked(NamedTuple):
    """When a verification began: its answer is stored only if no invalidation
    came since (``generation``), and it lasts from ``at``, not from its arrival."""
    generation: int
    at: float


class GrantCache:
    """Verdicts by SHA-256 of the presented key, each kept for the TTL from when
    it was asked (a grant never past its key's expiry). Bounded: the oldest entry
    makes room.

    A grant still in use is renewed before it ends: the first lookup in the last
    ``RENEW_SHARE`` of its life is told to renew it (once per entry), in the
    background, so that no request waits for a verification once its key is
    cached. A renewal's answer replaces the entry (a revoked key stops working
    at once) unless a later-asked answer is already there; one that fails leaves
    the entry to end when it would have."""

    def __init__(self, ttl: float, max_entries: int = CACHE_MAX_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        # digest -> (verdict, renew_at, until, asked_at); renew_at = until for a verdict
        # not to be renewed: a refusal, a grant ending with its key, or one whose
        # renewal is claimed.
        self._entries: dict[bytes, tuple[Verdict, float, float, float]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every invalidation

    def asking(self) -> Asked:
        """To call before verifying; the answer goes to ``put`` with it."""
        return Asked(self._generation, time.monotonic())

    def get(self, digest: bytes) -> tuple[Verdict | None, bool]:
        """The cached verdict (None when there is none, or it ended) and whether
        the caller should renew it now."""
        entry = self._entries.get(digest)
        if entry is None:
            return None, False
        verdict, renew_at, until, asked_at = entry
        now = time.monotonic()
        if now < renew_at:
            return verdict, False
        with self._lock:
            if self._entries.get(digest) is not entry:  # renewed, claimed or dropped meanwhile
                return (verdict, False) if now < until else (None, False)
            if now >= until:
                del self._entries[digest]
                return None, False
            self._entries[digest] = (verdict, until, until, asked_at)
        return verdict, True

    def put(self, digest: bytes, verdict: Verdict, asked: Asked) -> None:
        """Stores ``verdict``, asked at ``asked``: not if the cache was invalidated
        since, nor over an answer asked later."""
        lifetime = self.ttl
        if verdict.grant is not None and verdict.grant.expires_at is not None:
            lifetime = min(lifetime, verdict.grant.expires_at - time.time())
        until = asked.at + lifetime
        # A grant ending with its key is not renewed: it would only end again.
        renew_at = (asked.at + lifetime * (1 - RENEW_SHARE)
                    if verdict.grant is not None and lifetime == self.ttl else until)
        with self._lock:
            if asked.generation != self._generation or until <= time.monotonic():
                return
            current = self._entries.get(digest)
            if current is not None and current[3] > asked.at:
                return
            if current is None and len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = (verdict, renew_at, until, asked.at)

    def invalidate_key_id(self, key_id: str) -> None:
        with self._lock:
            self._generation += 1
            stale = [d for d, (v, _, _, _) in self._entries.items()
                     if v.grant is not None and v.grant.key_id == key_id]
            for digest in stale:
                del self._entries[digest]

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


class Verifier(Protocol):
    # client_address: the caller's IP (the auth service limits failed verifications by it)
    def verify(self, key: str, client_address: str = "") -> Verdict: ...


class AsyncVerifier(Protocol):
    async def verify(self, key: str, client_address: str = "") -> Verdict: ...


class _CacheFront:
    """What both cached verifiers do around their inner verifier."""

    def __init__(self, ttl: float, cache: GrantCache | None):
        self.cache = cache or GrantCache(ttl)

    def _lookup(self, digest: bytes) -> tuple[Verdict | None, bool]:
        verdict, renew = self.cache.get(digest)
        if verdict is not None:
            _cache_lookups("renew" if renew else "hit").inc()
        return verdict, renew

    @staticmethod
    def _missed() -> None:
        _cache_lookups("miss").inc()

    def _store(self, digest: bytes, verdict: Verdict, asked: Asked) -> Verdict:
        metrics.AUTH_VERIFY_SECONDS.observe(time.monotonic() - asked.at)
        self.cache.put(digest, verdict, asked)
        return verdict

    @staticmethod
    def _renewal_failed(exc: BaseException) -> None:
        # The message names the failure (e.g. "auth service unavailable"), never the key.
        log.warning("renewing a cached API key failed (%s); the cached answer ends as planned", exc)

    def invalidate_key_id(self, key_id: str) -> None:
        self.cache.invalidate_key_id(key_id)


class CachedVerifier(_CacheFront):
    """A verifier behind the cache. Malformed keys never reach it; concurrent
    misses on one key wait for a single verification (single flight), so the
    inner verifier is asked once per key per TTL per process (the auth service
    runs argon2 once per key: ``services.auth.verifier``)."""

    def __init__(self, inner: Verifier, ttl: float, cache: GrantCache | None = None):
        super().__init__(ttl, cache)
        self.inner = inner
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._renewals: ThreadPoolExecutor | None = None  # started at the first renewal
        self._renewal_lock = threading.Lock()
        self._renewing = 0

    def verify(self, key: str, client_address: str = "") -> Verdict:
        if parse_key(key) is None:
            return INVALID_KEY
        digest = key_digest(key)
        verdict, renew = self._lookup(digest)
        if verdict is None:
            with self._stripes[digest[0] % _LOCK_STRIPES]:
                verdict, renew = self._lookup(digest)
                if verdict is None:
                    self._missed()
                    return self._verify_into_cache(key, digest, client_address)
        if renew:
            self._start_renewal(key, digest, client_address)
        return verdict

    @property
    def renewing(self) -> int:
        """Renewals queued or running."""
        return self._renewing

    def _verify_into_cache(self, key: str, digest: bytes, client_address: str) -> Verdict:
        asked = self.cache.asking()
        return self._store(digest, self.inner.verify(key, client_address), asked)

    def _start_renewal(self, key: str, digest: bytes, client_address: str) -> None:
        with self._renewal_lock:
            if self._renewing >= RENEW_MAX_PENDING:
                return  # the auth service is slow: this entry lapses into a plain miss
            if self._renewals is None:
                self._renewals = ThreadPoolExecutor(RENEW_THREADS, thread_name_prefix="auth-renew")
            try:
                self._renewals.submit(self._renew, key, digest, client_address)
            except RuntimeError:  # shutting down
                return
            self._renewing += 1

    def _renew(self, key: str, digest: bytes, client_address: str) -> None:
        try:
            self._verify_into_cache(key, digest, client_address)
        except Exception as exc:
            self._renewal_failed(exc)
        finally:
            with self._renewal_lock:
                self._renewing -= 1


class AsyncCachedVerifier(_CacheFront):
    """``CachedVerifier`` for asyncio (single flight with asyncio locks, renewals
    as tasks on the running loop)."""

    def __init__(self, inner: AsyncVerifier, ttl: float, cache: GrantCache | None = None):
        super().__init__(ttl, cache)
        self.inner = inner
        self._stripes: list[asyncio.Lock] | None = None  # made in the running loop
        self._renewals: set[asyncio.Task] = set()

    async def verify(self, key: str, client_address: str = "") -> Verdict:
        if parse_key(key) is None:
            return INVALID_KEY
        digest = key_digest(key)
        verdict, renew = self._lookup(digest)
        if verdict is None:
            if self._stripes is None:
                self._stripes = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
            async with self._stripes[digest[0] % _LOCK_STRIPES]:
                verdict, renew = self._lookup(digest)
                if verdict is None:
                    self._missed()
                    return await self._verify_into_cache(key, digest, client_address)
        if renew and len(self._renewals) < RENEW_MAX_PENDING:
            task = asyncio.get_running_loop().create_task(self._renew(key, digest, client_address))
            self._renewals.add(task)  # a task nobody references may be collected mid-way
            task.add_done_callback(self._renewals.discard)
        return verdict

    @property
    def renewing(self) -> int:
        """Renewals running."""
        return len(self._renewals)

    async def _verify_into_cache(self, key: str, digest: bytes, client_address: str) -> Verdict:
        asked = self.cache.asking()
        return self._store(digest, await self.inner.verify(key, client_address), asked)

    async def _renew(self, key: str, digest: bytes, client_address: str) -> None:
        try:
            await self._verify_into_cache(key, digest, client_address)
        except Exception as exc:
            self._renewal_failed(exc)
