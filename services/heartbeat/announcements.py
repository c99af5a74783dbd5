"""Announcing maintenance windows to the services they cover (a window's ``announce``).

When an occurrence of an announcing window opens, each active service in its
scope gets one WINDOW_STARTED notification; when that occurrence ends (or the
window is deleted while open), each service that was told it started gets one
WINDOW_ENDED. They go through the hand-off outbox (``alert_notifications``,
rows of no alert) to routing and delivery, as alert notifications do.

Exactly once, with any number of monitors: the claim is a row of
``window_announcements`` (window, occurrence, kind, service) inserted ON
CONFLICT DO NOTHING by the statement that writes the outbox rows, and only the
claims it inserted get one. An occurrence is named by when it started (for a
recurring window whose occurrences overlap, the first of the stretch: the
stretch is announced once). The ends owed are found from the start claims
without their end.

Cheap when nothing is due: which occurrences start or end is decided in memory
from the windows (``WindowBook``); a pass needs the database's clock and the
windows' generation (read with the monitor's one statement of an idle pass), and
touches the tables only when an occurrence
starts or ends, and after a window changed (to learn the ends owed anew: an
edited window may end sooner or later; one no longer open at its announced
occurrence ends now).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from medic.db import Database, Tx
from medic.errors import MedicError
from medic.quiet import WINDOW_ENDED, WINDOW_STARTED
from services.heartbeat.windows import Scope, ServiceKey, Window, WindowBook, _literal_prefix

if TYPE_CHECKING:  # the store deletes through this module
    from services.heartbeat.window_store import WindowStore

log = logging.getLogger(__name__)

CLOCK = "SELECT now() AS now, generation FROM maintenance_windows_generation"

# The services a scope may cover, narrowed in SQL; ``Window.covers`` decides
# (the rule the monitor keeps quiet by). A glob is narrowed by its literal prefix.
SERVICES_OF_SCOPE = {
    Scope.SERVICE: "SELECT service_id, team, heartbeat_name FROM services WHERE active AND service_id = %(service_id)s",
    Scope.TEAM: "SELECT service_id, team, heartbeat_name FROM services WHERE active AND lower(team) = lower(%(team)s)",
    Scope.ALL: "SELECT service_id, team, heartbeat_name FROM services WHERE active",
    Scope.GLOB: """SELECT service_id, team, heartbeat_name FROM services
                   WHERE active AND lower(heartbeat_name) LIKE %(prefix)s || '%%'""",
}

STARTED_SERVICES = """
    SELECT service_id FROM window_announcements
    WHERE window_id = %(window_id)s AND occurrence = %(occurrence)s AND kind = 'start'
"""

# Occurrences told of their start and not (for every service) of their end.
OWED_ENDS = """
    SELECT DISTINCT s.window_id, s.occurrence FROM window_announcements s
    WHERE s.kind = 'start'
      AND NOT EXISTS (SELECT 1 FROM window_announcements e
                      WHERE e.window_id = s.window_id AND e.occurrence = s.occurrence
                        AND e.kind = 'end' AND e.service_id = s.service_id)
"""

# The claims and their outbox rows in one statement: a notification only for a claim inserted here.
ANNOUNCE = """
    WITH claimed AS (
        INSERT INTO window_announcements (window_id, service_id, occurrence, kind)
        SELECT %(window_id)s, service_id, %(occurrence)s, %(claim)s FROM unnest(%(services)s::bigint[]) AS service_id
        ON CONFLICT DO NOTHING
        RETURNING service_id
    )
    INSERT INTO alert_notifications (kind, event_id, occurred_at, due_at, service_id, window_id, window_reason,
                                     window_starts_at, window_ends_at)
    SELECT %(kind)s, %(event_prefix)s || service_id, %(now)s, %(now)s, service_id, %(window_id)s, %(reason)s,
           %(starts_at)s, %(ends_at)s
    FROM claimed
    ON CONFLICT (event_id) DO NOTHING
"""

# Once an occurrence's end is told, the claims of the window's earlier, fully
# told occurrences are no longer needed (an occurrence is claimed only while open).
FORGET_TOLD = """
    DELETE FROM window_announcements a USING window_announcements e
    WHERE a.window_id = %(window_id)s AND a.occurrence < %(occurrence)s
      AND e.window_id = a.window_id AND e.occurrence = a.occurrence AND e.service_id = a.service_id
      AND e.kind = 'end'
"""


class Occurrence(NamedTuple):
    window_id: int
    start: dt.datetime


def event_prefix(window_id: int, occurrence: dt.datetime, kind: str) -> str:
    """The event id of an announcement, less its service id: stable, so routing
    and delivery deduplicate it."""
    told = "started" if kind == WINDOW_STARTED else "ended"
    return f"window-{window_id}-{int(occurrence.timestamp())}-{told}-"


def end_of(window: Window | None, occurrence: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When an announced occurrence ends by the window's definition now: its
    stretch's end; ``now`` when the window is gone or no longer open then."""
    stretch = window.open_at(occurrence) if window is not None else None
    return stretch.end if stretch is not None else now


def like_prefix(pattern: str) -> str:
    """A glob's literal prefix (casefolded, as the book matches), escaped for LIKE."""
    return _literal_prefix(pattern).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def services_in_scope(tx: Tx, window: Window) -> list[int]:
    """The active services ``window`` covers."""
    rows = tx.all(SERVICES_OF_SCOPE[window.scope], {"service_id": window.service_id, "team": window.team,
                                                    "prefix": like_prefix(window.name_glob or "")})
    return [r["service_id"] for r in rows
            if window.covers(ServiceKey(r["service_id"], r["team"] or "", r["heartbeat_name"]))]


def announce(tx: Tx, window: Window, occurrence: dt.datetime, end: dt.datetime, kind: str,
             services: list[int], now: dt.datetime) -> int:
    """Claims the announcement of ``kind`` of the occurrence for ``services``
    and writes the outbox row of each claim this call made; how many."""
    if not services:
        return 0
    return tx.execute(ANNOUNCE, {
        "window_id": window.window_id, "occurrence": occurrence, "claim": "start" if kind == WINDOW_STARTED else "end",
        "services": services, "kind": kind, "event_prefix": event_prefix(window.window_id, occurrence, kind),
        "now": now, "reason": window.reason, "starts_at": occurrence, "ends_at": end})


def announce_end(tx: Tx, window: Window, occurrence: dt.datetime, end: dt.datetime, now: dt.datetime) -> int:
    """The WINDOW_ENDED of an occurrence to the services told it started."""
    services = [r["service_id"] for r in tx.all(STARTED_SERVICES, {"window_id": window.window_id,
                                                                   "occurrence": occurrence})]
    told = announce(tx, window, occurrence, end, WINDOW_ENDED, services, now)
    tx.execute(FORGET_TOLD, {"window_id": window.window_id, "occurrence": occurrence})
    return told


def announce_deleted(tx: Tx, window: Window) -> int:
    """A window deleted while open ends now: WINDOW_ENDED for each occurrence
    still owed its end (called in the deleting transaction, before the delete)."""
    now = tx.one("SELECT now() AS now")["now"]
    told = 0
    for row in tx.all(OWED_ENDS + " AND s.window_id = %(window_id)s", {"window_id": window.window_id}):
        told += announce_end(tx, window, row["occurrence"], now, now)
    return told


class Announcer:
    """The monitor's announcing step (``tick``), one per monitor process."""

    def __init__(self, db: Database, windows: WindowStore):
        self.db = db
        self.windows = windows
        self._generation: int | None = None
        self._book = WindowBook()
        self._announcing: list[Window] = []
        # Occurrences whose start this process claimed or saw claimed.
        self._started: set[Occurrence] = set()
        # Occurrences owed their end -> when they end.
        self._owed: dict[Occurrence, dt.datetime] = {}

    def tick(self, now: dt.datetime | None = None, generation: int | None = None) -> int:
        """Announces what started or ended since the last pass; how many
        notifications it wrote. ``now`` and ``generation``: the database's clock
        and the windows' generation, when the caller has just read them."""
        if now is None or generation is None:
            clock = self.db.one(CLOCK)
            now, generation = clock["now"], clock["generation"]
        if generation != self._generation:
            self._reload(now)
        # Ends first: a window's next occurrence starting as the last one ends is told in that order.
        return self._announce_ends(now) + self._announce_starts(now)

    def _announce_ends(self, now: dt.datetime) -> int:
        told = 0
        for occurrence, end in sorted(self._owed.items(), key=lambda item: item[1]):
            if end > now:
                continue
            window = self._book.windows.get(occurrence.window_id)
            if window is not None:
                done = self._guarded(occurrence, lambda tx, w=window, o=occurrence, e=end: announce_end(
                    tx, w, o.start, e, now))
                if done is None:
                    continue
                told += done
            self._owed.pop(occurrence, None)
        return told

    def _announce_starts(self, now: dt.datetime) -> int:
        told = 0
        for window in self._announcing:
            stretch, _ = self._book.state(window, now)
            if stretch is None:
                continue
            occurrence = Occurrence(window.window_id, stretch.start)
            if occurrence in self._started:
                continue
            if any(o.window_id == window.window_id and o.start < stretch.end and stretch.start < end
                   for o, end in self._owed.items()):
                # Open since an occurrence already announced and not yet ended: a later
                # occurrence of its stretch, or the window edited while open.
                self._started.add(occurrence)
                continue
            done = self._guarded(occurrence, lambda tx, w=window, s=stretch: announce(
                tx, w, s.start, s.end, WINDOW_STARTED, services_in_scope(tx, w), now))
            if done is None:
                continue
            told += done
            self._started.add(occurrence)
            self._owed[occurrence] = stretch.end
        return told

    def _guarded(self, occurrence: Occurrence, work: Callable[[Tx], int]) -> int | None:
        """One occurrence's claim in its own transaction; None when it failed
        (the window or a service deleted meanwhile, the database away): logged,
        and tried again at the next pass."""
        try:
            with self.db.transaction() as tx:
                return work(tx)
        except MedicError as exc:
            log.warning("announcing window %d (occurrence %s) failed: %s", occurrence.window_id,
                        occurrence.start.isoformat(), exc.message)
            return None

    def _reload(self, now: dt.datetime) -> None:
        book = self.windows.book()
        owed = {}
        for row in self.db.all(OWED_ENDS):
            window = book.windows.get(row["window_id"])
            if window is not None:
                owed[Occurrence(row["window_id"], row["occurrence"])] = end_of(window, row["occurrence"], now)
        self._book, self._generation = book, book.generation
        self._announcing = [w for w in book.windows.values() if w.announce]
        self._owed = owed
        self._started = set(owed)
