"""A task run every N seconds in a daemon thread (the monitor's passes, retention).

A pass that fails is logged and the task runs again at the next interval: a
database outage costs passes, never the thread. ``stopping`` lets a long pass
end early when the process shuts down. Each pass is a span while tracing is on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from medic import tracing
from medic.errors import MedicError

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, task: Callable[[], object], interval_seconds: float):
        self.name = name
        self.task = task
        self.interval_seconds = interval_seconds
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the pass in progress."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                with tracing.span(f"{self.name} tick"):
                    self.task()
            except MedicError as exc:  # e.g. the database is down: try again next time
                log.warning("%s pass failed: %s", self.name, exc.message)
            except Exception:
                log.exception("%s pass failed", self.name)
            self.stopping.wait(max(0.0, self.interval_seconds - (time.monotonic() - started)))
