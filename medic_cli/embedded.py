"""The embedded PostgreSQL 16 (the ``pgserver`` wheel) used by ``medic up`` when
``MEDIC_DATABASE_URL`` is unset. Its data lives in ``$MEDIC_DATA_DIR/postgres``
and survives restarts; it listens on a unix socket inside that folder only."""
from __future__ import annotations

import logging
import signal
import warnings
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path):
        self.folder = (data_dir / "postgres").resolve()
        self._server = None

    def start(self) -> str:
        """Starts (or attaches to) the server; returns its libpq URI."""
        # pgserver asks platformdirs for a runtime folder, which warns when
        # XDG_RUNTIME_DIR is unset (containers, CI) and then uses /tmp: harmless.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

        self.folder.mkdir(parents=True, exist_ok=True)
        # cleanup_mode="stop": the server stops when this process ends; the data stays.
        self._server = pgserver.get_server(self.folder, cleanup_mode="stop")
        uri = self._server.get_uri()
        log.info("embedded PostgreSQL running in %s", self.folder)
        return uri

    def stop(self, timeout: float = 30.0) -> None:
        """Stops the server running in the folder, whoever started it last: pgserver
        stops only the postmaster it started, so after an outside restart (pg_ctl
        restart, a crash and recovery) it would leave the new one running."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        postmaster = self.running_postmaster()
        if postmaster is None:
            return
        log.info("stopping the embedded PostgreSQL (pid %d) pgserver did not stop", postmaster.pid)
        postmaster.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, checkpoints
        try:
            postmaster.wait(timeout)
        except psutil.TimeoutExpired:
            postmaster.kill()

    def running_postmaster(self) -> psutil.Process | None:
        """The postmaster serving this folder (first line of postmaster.pid), if it runs."""
        try:
            pid = int((self.folder / "postmaster.pid").read_text().split("\n", 1)[0])
            process = psutil.Process(pid)
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE \
                    and "postgres" in process.name():
                return process
        except (OSError, ValueError, psutil.Error):
            pass
        return None
