"""Group commit for heartbeats.

RPC threads hand their heartbeats to ``IngestQueue.submit`` and wait; a few
writer threads each take whatever is queued (up to ``batch_max`` items), record
it in one transaction and wake the callers. Under load many heartbeats share a
commit; alone, a heartbeat waits only for its own transaction. Every caller
returns only after its heartbeats are committed (or with the error that
prevented it).

A batch that fails for a reason other than the database being unavailable is
retried submission by submission, so one bad request cannot fail its
neighbours.
"""
from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Sequence

from medic.errors import MedicError, Unavailable
from services.heartbeat import metrics
from services.heartbeat.store import HeartbeatStore, IngestItem, IngestResult

log = logging.getLogger(__name__)


class _Submission:
    """One caller's heartbeats, and the lock it waits on until a writer is done
    with them: the cheapest hand-back CPython has (a ``concurrent.futures.Future``
    builds a Condition per call and wakes through it; this is one C lock)."""

    __slots__ = ("items", "results", "error", "_done")

    def __init__(self, items: Sequence[IngestItem]):
        self.items = items
        self.results: list[IngestResult] | None = None
        self.error: BaseException | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def finish(self, results: list[IngestResult] | None = None, error: BaseException | None = None) -> None:
        self.results, self.error = results, error
        self._done.release()

    def wait(self) -> list[IngestResult]:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.results  # type: ignore[return-value]


class IngestQueue:
    def __init__(self, store: HeartbeatStore, *, batch_max: int = 500, writers: int = 2):
        self.store = store
        self.batch_max = batch_max
        self._pending: collections.deque[_Submission] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._threads = [threading.Thread(target=self._writer, name=f"ingest-{n}", daemon=True)
                         for n in range(writers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops taking submissions; what is queued is still written."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def submit(self, items: Sequence[IngestItem]) -> list[IngestResult]:
        submission = _Submission(items)
        with self._cond:
            if self._closed:
                raise Unavailable("shutting down")
            self._pending.append(submission)
            self._cond.notify()
        return submission.wait()

    def _take(self) -> list[_Submission] | None:
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            taken = [self._pending.popleft()]
            count = len(taken[0].items)
            while self._pending and count + len(self._pending[0].items) <= self.batch_max:
                submission = self._pending.popleft()
                taken.append(submission)
                count += len(submission.items)
            return taken

    def _writer(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            self._write(taken)

    def _write(self, taken: list[_Submission]) -> None:
        items = [item for submission in taken for item in submission.items]
        metrics.INGEST_BATCH_SIZE.observe(len(items))
        try:
            with metrics.INGEST_COMMIT_SECONDS.time():
                results = self.store.record_heartbeats(items)
        except Unavailable as exc:
            for submission in taken:
                submission.finish(error=exc)
            return
        except Exception as exc:
            if len(taken) == 1:
                taken[0].finish(error=exc if isinstance(exc, MedicError) else MedicError("ingest failed"))
                if not isinstance(exc, MedicError):
                    log.exception("recording heartbeats failed")
                return
            for submission in taken:  # isolate the culprit
                self._write([submission])
            return
        offset = 0
        for submission in taken:
            submission.finish(results[offset:offset + len(submission.items)])
            offset += len(submission.items)
        for outcome, count in collections.Counter(r.outcome for r in results).items():
            metrics.HEARTBEATS.labels(outcome).inc(count)
