"""Worker threads that take work while there is some, then sleep until woken
(the hand-off dispatchers, the remediation engine).

Each thread calls ``work(number)``, which returns how much it did; while that is
more than nothing it calls again at once. Otherwise it sleeps ``idle_wait(number)``
seconds, or until ``wake()`` (work was committed by this process: no waiting for
the next poll). A pass that fails is logged, and the thread sleeps as when idle:
a database outage costs passes, never a thread.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from medic.errors import MedicError

log = logging.getLogger(__name__)


class Workers:
    def __init__(self, name: str, count: int, work: Callable[[int], int], idle_wait: Callable[[int], float]):
        self.name = name
        self.count = count
        self.work = work
        self.idle_wait = idle_wait
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        """Every sleeping thread looks for work now (and each running one once more)."""
        with self._wake:
            self._pending_wakes = self.count
            self._wake.notify_all()

    def start(self) -> None:
        for n in range(self.count):
            thread = threading.Thread(target=self._run, args=(n,), name=f"{self.name}-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stops each thread after its pass in progress."""
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, number: int) -> None:
        while not self._stop.is_set():
            try:
                done = self.work(number)
            except MedicError as exc:
                log.warning("%s pass failed: %s", self.name, exc.message)
                done = 0
            except Exception:
                log.exception("%s pass failed", self.name)
                done = 0
            if done:
                continue
            with self._wake:
                if self._pending_wakes == 0:
                    self._wake.wait(self.idle_wait(number))
                self._pending_wakes = max(self._pending_wakes - 1, 0)
