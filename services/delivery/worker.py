"""The delivery workers: claim due deliveries, send, schedule, record.

One claimer thread takes due rows from the outbox (as many as there are free
worker threads, and at most `per_destination` in flight per destination, so a
slow receiver ties up only its own share) and hands each to a thread pool. (A
RESOLVE to a target that never heard of the alert is marked skipped by the
claim itself and never reaches a worker: see outbox.SKIP_UNHEARD_RESOLVES.)
Each delivery then goes through the stages

    send (the integration's sender says success / retryable / permanent)
    -> schedule (retry.decide: when, if ever, to try again)
    -> record (outbox.record_attempts, guarded by the claim token)

Outcomes are recorded by one recorder thread, everything that finished since its
last write in one transaction: one statement per batch instead of a transaction
per delivery (at hundreds of deliveries a second, a transaction each kept PostgreSQL busiest). A
delivery keeps its worker slot until its outcome is recorded.

A crash at any point leaves the row claimed until its lease ends, after which
any worker takes it over: at-least-once, with the same idempotency key.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from medic import tracing
from medic.errors import MedicError, Unavailable
from services.delivery import metrics, retry
from services.delivery.integrations.base import Integration
from services.delivery.model import AttemptResult, Notification, Outcome, config_json
from services.delivery.outbox import Attempt, OutboxStore

log = logging.getLogger(__name__)

QUEUE_STATS_EVERY_SECONDS = 5.0
RECORD_BATCH_MAX = 256
CLAIM_COALESCE_SECONDS = 0.02
RECORD_DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerSettings:
    workers: int = 32
    per_destination: int = 8
    lease_seconds: float = 60.0
    poll_seconds: float = 0.2
    retry_delays: Sequence[float] = (1.0, 5.0, 30.0)
    retry_after_cap: float = 300.0


class DeliveryWorkers:
    def __init__(self, store: OutboxStore, senders: Mapping[str, Integration],
                 settings: WorkerSettings):
        self.store = store
        self.senders = dict(senders)
        self.settings = settings
        self._lock = threading.Condition()
        self._in_flight: dict[int, str] = {}  # delivery_id -> claim token
        self._sending: set[int] = set()  # in flight, its send has begun
        self._sent: set[int] = set()  # in flight, sent, outcome waiting for the recorder
        self._released = False  # stop() released what had not been sent: no send begins now
        self._per_destination: dict[str, int] = {}
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._claimer: threading.Thread | None = None
        self._recorder: threading.Thread | None = None
        # (notification, result, status, retry delay) waiting to be recorded
        self._outcomes: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._stats_at = 0.0

    # --- life cycle ----------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.settings.workers,
                                        thread_name_prefix="delivery-send")
        self._claimer = threading.Thread(target=self._claim_loop, name="delivery-claimer",
                                         daemon=True)
        self._claimer.start()
        self._recorder = threading.Thread(target=self._record_loop, name="delivery-recorder",
                                          daemon=True)
        self._recorder.start()

    def stop(self, grace: float) -> None:
        """Stops claiming, lets in-flight deliveries finish within `grace`, then
        releases the rest so another process sends them at once."""
        self._stopping.set()
        self._wake.set()
        if self._claimer is not None:
            self._claimer.join(timeout=5)
        deadline = time.monotonic() + grace
        with self._lock:
            while self._in_flight and time.monotonic() < deadline:
                self._lock.wait(timeout=max(0.01, deadline - time.monotonic()))
            # Sent deliveries are never released (another process would send them
            # again): the recorder gets a little longer to write their outcomes.
            drain_until = time.monotonic() + RECORD_DRAIN_SECONDS
            while self._sent and time.monotonic() < drain_until:
                self._lock.wait(timeout=max(0.01, drain_until - time.monotonic()))
            self._released = True
            # Claimed but not begun: their attempts are given back. Cut short
            # mid-send: counted, as after a crash (the receiver may have got it).
            unsent = [(i, token) for i, token in self._in_flight.items() if i not in self._sending]
            cut_short = [(i, token) for i, token in self._in_flight.items()
                         if i in self._sending and i not in self._sent]
            for delivery_id, _ in unsent:
                self._in_flight.pop(delivery_id)  # never sent, so never finished
        for claims, sending_began in ((unsent, False), (cut_short, True)):
            if not claims:
                continue
            try:
                released = self.store.release(claims, sending_began=sending_began)
                log.info("released %d unfinished deliveries (%s)", released,
                         "cut short mid-send" if sending_began else "not sent")
            except MedicError:
                log.warning("could not release %d deliveries; they are retried after the lease",
                            len(claims))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Something was enqueued: look for due deliveries now instead of at the next poll."""
        self._wake.set()

    # --- claiming ------------------------------------------------------------
    def _room(self, destination: str) -> int:
        return self.settings.per_destination - self._per_destination.get(destination, 0)

    def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._update_queue_stats()
            with self._lock:
                free = self._free_slots_to_claim()
            claimed = []
            if free > 0:
                try:
                    with self._lock:
                        full = [key for key, n in self._per_destination.items()
                                if n >= self.settings.per_destination]
                        claimed = self.store.claim_due(free, self.settings.lease_seconds,
                                                       self._room, full, _count_skipped_resolve)
                        for row in claimed:
                            self._in_flight[row["delivery_id"]] = row["claim_token"]
                            key = row["destination_key"]
                            self._per_destination[key] = self._per_destination.get(key, 0) + 1
                        metrics.IN_FLIGHT.set(len(self._in_flight))
                except MedicError as exc:
                    log.warning("claiming deliveries failed: %s", exc.message)
                    self._stopping.wait(1.0)
                    continue
            for row in claimed:
                self._pool.submit(self._deliver, row)
            if claimed and len(claimed) == free:
                continue  # probably more due; a finishing delivery makes room
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()

    def _free_slots_to_claim(self) -> int:
        """Free worker slots; when only a few are free, waits briefly (up to
        CLAIM_COALESCE_SECONDS) for more, so that a busy process makes one claim
        per several finished deliveries rather than one each (a claim costs
        PostgreSQL the same for 1 row or 32). Called with the lock held."""
        free = self.settings.workers - len(self._in_flight)
        enough = max(1, self.settings.workers // 4)
        deadline = time.monotonic() + CLAIM_COALESCE_SECONDS
        while 0 < free < enough and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._lock.wait(left)
            free = self.settings.workers - len(self._in_flight)
        return free

    def _update_queue_stats(self) -> None:
        now = time.monotonic()
        if now - self._stats_at < QUEUE_STATS_EVERY_SECONDS:
            return
        self._stats_at = now
        try:
            stats = self.store.queue_stats()
        except MedicError:
            return
        metrics.QUEUE_DEPTH.set(stats["due"])
        metrics.OLDEST_DUE_SECONDS.set(stats["oldest_seconds"])

    # --- one delivery: send -> schedule, then the recorder records ----------
    def _deliver(self, row: dict) -> None:
        try:
            notification = to_notification(row)
        except Exception:
            log.exception("delivery %s could not be read; attempted again after the lease",
                          row.get("delivery_id"))
            self._finish([(row["delivery_id"], row["destination_key"])])
            return
        with self._lock:
            if self._released:
                return  # released by stop(): another process sends it
            self._sending.add(notification.delivery_id)
        try:
            with tracing.span("delivery attempt", keys=[notification.event["event_id"]], attributes={
                    "medic.event_id": notification.event["event_id"], "medic.delivery_id": notification.delivery_id,
                    "medic.target_type": notification.target_type}):
                result = self._send(notification)
            status, delay = retry.decide(result.outcome.value, notification.round_attempts,
                                         self.settings.retry_delays, result.retry_after,
                                         self.settings.retry_after_cap)
        except BaseException:
            self._finish([(notification.delivery_id, notification.destination_key)])
            raise  # unrecorded: attempted again after the lease
        with self._lock:
            self._sent.add(notification.delivery_id)
        self._outcomes.put((notification, result, status, delay))

    def _finish(self, slots: Sequence[tuple[int, str]]) -> None:
        """Frees the worker slots, (delivery id, destination), of deliveries whose
        outcome is recorded (or lost)."""
        with self._lock:
            for delivery_id, key in slots:
                self._in_flight.pop(delivery_id, None)
                self._sending.discard(delivery_id)
                self._sent.discard(delivery_id)
                self._per_destination[key] = self._per_destination.get(key, 1) - 1
                if self._per_destination[key] <= 0:
                    del self._per_destination[key]
            metrics.IN_FLIGHT.set(len(self._in_flight))
            self._lock.notify_all()
        self._wake.set()

    def _send(self, notification: Notification) -> AttemptResult:
        sender = self.senders[notification.target_type]
        started = time.monotonic()
        try:
            return sender.send(notification)
        except Exception as exc:  # a sender bug must not kill the worker or lose the row
            log.exception("sender %s failed on delivery %d", notification.target_type,
                          notification.delivery_id)
            return AttemptResult(Outcome.PERMANENT, error=f"internal error: {type(exc).__name__}")
        finally:
            metrics.ATTEMPT_SECONDS.labels(notification.target_type).observe(
                time.monotonic() - started)

    def _record_loop(self) -> None:
        while True:
            try:
                batch = [self._outcomes.get(timeout=0.5)]
            except queue.Empty:
                if self._stopping.is_set() and not self._in_flight:
                    return  # stop() has waited for (or released) every delivery
                continue
            while len(batch) < RECORD_BATCH_MAX:
                try:
                    batch.append(self._outcomes.get_nowait())
                except queue.Empty:
                    break
            try:
                self._record(batch)
            except Exception:
                log.exception("recording %d delivery attempts failed", len(batch))
            finally:
                self._finish([(n.delivery_id, n.destination_key) for n, *_ in batch])

    def _record(self, batch: Sequence[tuple[Notification, AttemptResult, str, float | None]]) -> None:
        attempts = [Attempt(notification.delivery_id, notification.claim_token, status, delay,
                            result.response_code, result.response_body, result.error, result.latency_ms)
                    for notification, result, status, delay in batch]
        try:
            recorded = self.store.record_attempts(attempts)
        except Unavailable as exc:
            # The rows stay claimed; they are attempted again after the lease.
            log.warning("could not record %d delivery attempts: %s", len(batch), exc.message)
            return
        except MedicError:
            # One attempt the database refuses must not cost the others their
            # record (they would be sent again after the lease): one by one.
            recorded = {}
            for attempt in attempts:
                try:
                    recorded.update(self.store.record_attempts([attempt]))
                except MedicError as exc:
                    log.warning("could not record delivery %d: %s", attempt.delivery_id, exc.message)
        for notification, result, status, _ in batch:
            if notification.delivery_id not in recorded:
                log.info("delivery %d was taken over by another worker; result dropped",
                         notification.delivery_id)
                continue
            metrics.DELIVERIES.labels(notification.target_type, status).inc()
            if status == "success":
                metrics.observe_delivered(notification.target_type, notification.event)
            for skipped_type in recorded[notification.delivery_id].skipped_types:
                metrics.DELIVERIES.labels(skipped_type, "skipped").inc()
            log.log(logging.INFO if status != "failed" else logging.WARNING,
                    "delivery %d (%s) attempt %d: %s%s", notification.delivery_id,
                    notification.target_type, notification.round_attempts, status,
                    f" ({result.error})" if result.error else "")


def _count_skipped_resolve(row: Mapping) -> None:
    metrics.DELIVERIES.labels(row["target_type"], "skipped").inc()
    log.info("delivery %d (%s) skipped: a RESOLVE to a target that got none of the alert's "
             "earlier events", row["delivery_id"], row["target_type"])


def to_notification(row: Mapping) -> Notification:
    webhook = None
    if row.get("webhook") is not None:
        w = row["webhook"]
        webhook = {"url": w["url"], "headers": config_json(w["headers"]), "secret": w["secret"],
                   "enabled": w["enabled"]}
    return Notification(
        delivery_id=row["delivery_id"], claim_token=row["claim_token"],
        target_type=row["target_type"], config=config_json(row["config"]),
        event=config_json(row["event"]), idempotency_key=row["idempotency_key"],
        destination_key=row["destination_key"], round_attempts=row["round_attempts"],
        webhook=webhook, webhook_id=row["webhook_id"])
