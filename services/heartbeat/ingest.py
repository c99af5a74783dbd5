"""Group commit for heartbeats.

RPC threads hand their heartbeats to ``IngestQueue.submit`` and wait; a few
writer threads each take whatever is queued (up to ``batch_max`` items), record
it and wake the callers. Under load many heartbeats share a commit; alone, a
heartbeat waits only for its own. Every caller returns only after its
heartbeats are committed (or with the error that prevented it).

A batch is recorded in one statement that commits itself (a single round trip)
when every heartbeat in it is steady (an up, active service, a sign of life),
as nearly all are; the others then go through the rule in a transaction of
their own. A batch that fails for a reason other than the database being
unavailable is retried submission by submission, so one bad request cannot
fail its neighbours.
"""
from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from medic import tracing
from medic.errors import MedicError, Unavailable
from services.heartbeat import metrics
from services.heartbeat.heartbeat_store import HeartbeatStore, IngestItem, IngestResult

log = logging.getLogger(__name__)


class _Submission:
    """One caller's heartbeats, and the lock it waits on until a writer is done
    with them: the cheapest hand-back CPython has (a ``concurrent.futures.Future``
    builds a Condition per call and wakes through it; this is one C lock)."""

    __slots__ = ("items", "results", "error", "context", "_done")

    def __init__(self, items: Sequence[IngestItem]):
        self.items = items
        self.results: list[IngestResult] | None = None
        self.error: BaseException | None = None
        self.context = tracing.current_context()  # the caller's trace, while tracing is on
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
            size = sum(len(submission.items) for submission in taken)
            metrics.INGEST_BATCH_SIZE.observe(size)
            with metrics.INGEST_COMMIT_SECONDS.time(), tracing.span(
                    "ingest batch", parents=[s.context for s in taken], attributes={"medic.heartbeats": size}):
                self._write(taken)

    def _write(self, taken: list[_Submission]) -> None:
        """The steady heartbeats in one statement, committed as it ends (one round
        trip); then, in a transaction of their own, the heartbeats it left to the rule
        (rare: a new or down service, a reported failure, an inactive service)."""
        try:
            results = self.store.record_steady_heartbeats(
                [item for submission in taken for item in submission.items])
        except Exception as exc:  # the statement failed whole: nothing was recorded
            self._failed(exc, taken, lambda index: self._write([taken[index]]))
            return
        self._count(result for result in results if result is not None)
        rest, offset = [], 0
        for submission in taken:
            own = results[offset:offset + len(submission.items)]
            offset += len(submission.items)
            if None in own:
                rest.append((submission, own))
            else:
                submission.finish(own)
        if rest:
            self._write_rest(rest)

    def _write_rest(self, rest: list[tuple[_Submission, list[IngestResult | None]]]) -> None:
        """Records in one transaction (by the rule) the items of each submission whose
        result is still None, and finishes the submissions. One whose rest cannot be
        recorded fails whole, though its steady heartbeats are committed: as with an
        answer lost after its commit, a retry records those again."""
        places, items = [], []  # where each item left goes back in its submission's results
        for submission, own in rest:
            for index, result in enumerate(own):
                if result is None:
                    places.append((own, index))
                    items.append(submission.items[index])
        try:
            recorded = self.store.record_heartbeats(items)
        except Exception as exc:
            self._failed(exc, [submission for submission, _ in rest], lambda index: self._write_rest([rest[index]]))
            return
        for (own, index), result in zip(places, recorded):
            own[index] = result
        self._count(recorded)
        for submission, own in rest:
            submission.finish(own)

    @staticmethod
    def _failed(exc: Exception, submissions: list[_Submission], retry_one: Callable[[int], None]) -> None:
        """Recording (what is left of) ``submissions`` failed with ``exc``, as a whole:
        none of it was recorded. The database being unavailable fails them all;
        otherwise one submission gets its error, and several are tried again one by
        one (``retry_one(index)``), so that one bad request cannot fail its neighbours."""
        if isinstance(exc, Unavailable):
            for submission in submissions:
                submission.finish(error=exc)
        elif len(submissions) == 1:
            submissions[0].finish(error=exc if isinstance(exc, MedicError) else MedicError("ingest failed"))
            if not isinstance(exc, MedicError):
                log.error("recording heartbeats failed", exc_info=exc)
        else:
            for index in range(len(submissions)):
                retry_one(index)

    @staticmethod
    def _count(results: Iterable[IngestResult]) -> None:
        for outcome, count in collections.Counter(result.outcome for result in results).items():
            metrics.HEARTBEATS.labels(outcome).inc(count)
