"""Keeping failed key verifications cheap for us and scarce for an attacker.

Anyone who knows a key id (the visible part of a key) can make the auth service
run one argon2 verification, ~0.2 s of CPU, per request, with a new random
secret each time. Two defences, both before any argon2 work:

* **Failed verifications are limited** per key id and per client address
  (``MEDIC_AUTH_FAILURES_PER_KEY_PER_MINUTE``, ``..._PER_IP_PER_MINUTE``), in the
  process's rate limiter (Redis when set, so replicas share the count). Past
  the limit a key that still needs verifying is refused with RESOURCE_EXHAUSTED
  and ``retry-after`` (HTTP 429 at the gateway). Only failures count: the
  owner's own first verification costs nothing of the allowance, and a key this
  process has already verified (``LocalVerifier`` remembers it) never gets here,
  so the owner of an attacked key id is not locked out.
* **argon2 work at once is bounded** (``MEDIC_AUTH_VERIFY_CONCURRENCY``): past
  the bound a verification is refused at once with UNAVAILABLE (HTTP 503,
  ``retry-after: 1``) instead of queueing behind 0.2 s jobs, so a burst costs
  its callers a fast answer rather than everyone a slow one.

Refusals count in ``medic_auth_failures_total`` (``too_many_failures``,
``verification_busy``).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from medic import metrics, ratelimit
from medic.config import Settings
from medic.errors import ResourceExhausted, Unavailable
from medic.ratelimit import RateLimiter, RateLimitStatus

BUSY_RETRY_AFTER_SECONDS = 1


class FailedVerifications:
    def __init__(self, settings: Settings, limiter: RateLimiter | None = None):
        self.limiter = limiter or ratelimit.limiter_from_settings(settings)
        self.per_key = settings.auth_failures_per_key_per_minute
        self.per_address = settings.auth_failures_per_ip_per_minute
        self._slots = threading.BoundedSemaphore(settings.auth_verify_concurrency)

    def _buckets(self, key_id: str, client_address: str) -> list[tuple[str, int, str]]:
        """(bucket, limit, whose failures) for the key id and, when known, the address."""
        buckets = [(f"auth_failures:key:{key_id}", self.per_key, "this key id")]
        if client_address:
            buckets.append((f"auth_failures:ip:{client_address}", self.per_address,
                            "this client address"))
        return buckets

    def check(self, key_id: str, client_address: str) -> None:
        """Raises ResourceExhausted when the key id or the address has used up its
        failures; records nothing."""
        for bucket, limit, whose in self._buckets(key_id, client_address):
            status = self.limiter.check(bucket, limit, record=False)
            if not status.allowed:
                raise _too_many(status, whose)

    def failed(self, key_id: str, client_address: str) -> None:
        for bucket, limit, _ in self._buckets(key_id, client_address):
            self.limiter.check(bucket, limit)

    @contextlib.contextmanager
    def argon2_slot(self) -> Iterator[None]:
        """Holds one of the argon2 slots, or raises Unavailable at once when all are taken."""
        if not self._slots.acquire(blocking=False):
            metrics.AUTH_FAILURES.labels("verification_busy").inc()
            raise Unavailable("the auth service is busy verifying other keys; retry in a second",
                              trailers=(("retry-after", str(BUSY_RETRY_AFTER_SECONDS)),))
        try:
            yield
        finally:
            self._slots.release()


def _too_many(status: RateLimitStatus, whom: str) -> ResourceExhausted:
    metrics.AUTH_FAILURES.labels("too_many_failures").inc()
    return ResourceExhausted(
        f"too many failed API key verifications for {whom}: {status.limit} a minute; "
        f"retry after {status.retry_after} s",
        trailers=(("retry-after", str(status.retry_after)),))
