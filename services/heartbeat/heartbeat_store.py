"""Heartbeat events: the tuned ingest that records them (and moves the clocks of
their services), the listing that reads them, and retention that expires them.

Times come from the database clock (``now()`` of the transaction), so every
process and the monitor agree on them. The down rule is ``deadline.py``; what
heartbeats do to a service's state and alert is ``lifecycle.py``, carried out by
``alert_store.execute``.
"""
from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from typing import NamedTuple

from medic.db import Database, Prepared, Row, Tx, int_array, text_array, timestamp_array
from services.heartbeat import alert_store, lifecycle, run_store, schedule, status
from services.heartbeat.alert_store import Changes, RunFacts
from services.heartbeat.lifecycle import LifecyclePolicy, RunEnd, ServiceState
from services.heartbeat.window_store import WindowStore
from services.heartbeat.windows import ServiceKey

# A batch's first statement (one round trip): locks every service the batch
# names, in id order (so concurrent batches cannot deadlock), and handles the
# common case alone. The heartbeats of services that are up and active and got
# only signs of life in this batch move those services' clocks by the down rule
# of deadline.py written in SQL for that case (the ``n`` new beats at ``now`` go
# in front of ``recent_beats``, which keeps ``threshold`` of them; ``deadline_at``
# is h_k + interval + grace, h_k no earlier than ``activated_at``; the state stays
# up) and are inserted. The other locked services (new, down, inactive, a reported
# failure) come back whole, for the rule in Python (``_record_by_rule``) in the
# same transaction; unresolved names are unknown. Rows (told apart by content,
# not order): one per steady service (``state`` NULL), one per other locked
# service, and one with ``now`` and the ids of the inserted heartbeats, drawn in
# the order of the items. ``now`` and the ids come once, not per row: psycopg2
# builds a datetime for every timestamp it reads. Names are compared as
# ``lower(heartbeat_name) = lower(name)``, as registration does, and the last row
# says which service each item named (``item_services``, NULL for none): Python's
# lower() differs from PostgreSQL's for some letters (İ, a final Σ), so names are
# never lower-cased in Python.
#
# Two plans of it: the plan of a prepared statement is generic, made for ten
# items whatever the batch holds. Joined to the items alone, a small ``services``
# table is read whole in every batch, dead rows (old versions of the rows the
# ingest rewrites) included: for one heartbeat that costs several times a lookup
# through the primary key, while for batches of hundreds reading the table costs
# less than the lookups. So small batches take the key and large ones the join.
# The small-batch statement always runs its generic plan (PostgreSQL would plan
# every run afresh: see ``Prepared``); the large one keeps PostgreSQL's choice.
SMALL_BATCH = 64
_LOCKED_SERVICE = """service_id, heartbeat_name, service_name, team, priority"""
_RECORD_STEADY_HEARTBEATS = f"""
    WITH items AS (
        SELECT i.ord, i.status, i.run_id, i.plain,
               CASE WHEN i.name IS NULL THEN i.service_id
                    ELSE (SELECT service_id FROM services WHERE lower(heartbeat_name) = lower(i.name))
               END AS service_id
        FROM unnest(%(names)s::text[], %(service_ids)s::bigint[], %(statuses)s::text[],
                    %(run_ids)s::text[], %(plain)s::boolean[])
             WITH ORDINALITY AS i (name, service_id, status, run_id, plain, ord)
    ), beats AS (
        SELECT service_id, count(*)::integer AS n, bool_and(plain) AS plain_only
        FROM items WHERE service_id IS NOT NULL
        GROUP BY service_id
    ), locked AS MATERIALIZED (
        SELECT s.service_id, s.heartbeat_name, s.service_name,
               s.team, s.priority, s.active, s.muted, s.threshold, s.recent_beats, s.activated_at,
               s.alert_interval_seconds, s.grace_period_seconds, s.state, s.schedule, s.timezone,
               s.failure_tolerance, s.consecutive_failures, s.max_duration_seconds, s.min_duration_seconds, b.n,
               s.active AND s.state = '{ServiceState.UP}' AND b.plain_only AND s.schedule IS NULL
                   AND s.consecutive_failures = 0 AS steady
        FROM services AS s JOIN beats AS b USING (service_id)
        {{locate}}
        ORDER BY s.service_id
        FOR NO KEY UPDATE OF s
    ), clocks AS (
        UPDATE services AS s
        SET recent_beats = (array_fill(now(), ARRAY[l.n]) || s.recent_beats)[1:s.threshold],
            deadline_at = greatest(coalesce((array_fill(now(), ARRAY[l.n]) || s.recent_beats)[s.threshold],
                                            s.activated_at), s.activated_at)
                          + make_interval(secs => s.alert_interval_seconds::float8 + s.grace_period_seconds),
            last_heartbeat_at = now()
        FROM locked AS l
        WHERE s.service_id = l.service_id AND l.steady
        RETURNING s.service_id
    ), inserted AS (
        INSERT INTO heartbeat_events (service_id, time, status, run_id)
        SELECT i.service_id, now(), i.status, i.run_id
        FROM items AS i JOIN clocks AS c USING (service_id)
        ORDER BY i.ord
        RETURNING heartbeat_id
    )
    SELECT NULL::timestamptz AS now, NULL::bigint[] AS heartbeat_ids, NULL::bigint[] AS item_services,
           {_LOCKED_SERVICE},
           NULL::boolean AS active, NULL::boolean AS muted, NULL::integer AS threshold,
           NULL::timestamptz[] AS recent_beats, NULL::timestamptz AS activated_at,
           NULL::integer AS alert_interval_seconds, NULL::integer AS grace_period_seconds,
           NULL::text AS state, NULL::text AS schedule, NULL::text AS timezone,
           NULL::integer AS failure_tolerance, NULL::integer AS consecutive_failures,
           NULL::integer AS max_duration_seconds, NULL::integer AS min_duration_seconds
    FROM locked WHERE steady
    UNION ALL
    SELECT NULL, NULL, NULL, {_LOCKED_SERVICE}, active, muted, threshold, recent_beats, activated_at,
           alert_interval_seconds, grace_period_seconds, state, schedule, timezone, failure_tolerance,
           consecutive_failures, max_duration_seconds, min_duration_seconds
    FROM locked WHERE NOT steady
    UNION ALL
    SELECT now(), ARRAY(SELECT heartbeat_id FROM inserted), ARRAY(SELECT service_id FROM items ORDER BY ord),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL
"""
_STEADY_PARAMS = [("names", "text[]"), ("service_ids", "bigint[]"), ("statuses", "text[]"),
                  ("run_ids", "text[]"), ("plain", "boolean[]")]
RECORD_STEADY_HEARTBEATS = Prepared("medic_record_steady_heartbeats",
                                    _RECORD_STEADY_HEARTBEATS.replace("{locate}", ""), _STEADY_PARAMS)
RECORD_FEW_STEADY_HEARTBEATS = Prepared(
    "medic_record_few_steady_heartbeats",
    _RECORD_STEADY_HEARTBEATS.replace(
        "{locate}", "WHERE s.service_id = ANY(ARRAY(SELECT service_id FROM beats))"),
    _STEADY_PARAMS, generic_plan=True)

# The heartbeats of a batch and the clocks of their services in one statement
# (one round trip), columns passed as arrays. ``recent`` holds each service's
# recent beats as an array literal (the arrays differ in length). Rows come back
# in the order given, like a multi-row VALUES.
RECORD_HEARTBEATS = Prepared("medic_record_heartbeats", """
    WITH inserted AS (
        INSERT INTO heartbeat_events (service_id, time, status, run_id)
        SELECT service_id, %(now)s, status, run_id
        FROM unnest(%(event_services)s::bigint[], %(statuses)s::text[], %(run_ids)s::text[])
             AS e (service_id, status, run_id)
        RETURNING heartbeat_id
    ), clocks AS (
        UPDATE services AS s
        SET recent_beats = c.recent::timestamptz[], deadline_at = c.deadline_at,
            last_heartbeat_at = %(now)s, state = c.state, consecutive_failures = c.failures
        FROM unnest(%(clock_services)s::bigint[], %(recent)s::text[], %(deadlines)s::timestamptz[],
                    %(states)s::text[], %(failures)s::integer[]) AS c (service_id, recent, deadline_at, state,
                                                                    failures)
        WHERE s.service_id = c.service_id
    )
    SELECT heartbeat_id FROM inserted
""", [("now", "timestamptz"), ("event_services", "bigint[]"), ("statuses", "text[]"),
      ("run_ids", "text[]"), ("clock_services", "bigint[]"), ("recent", "text[]"),
      ("deadlines", "timestamptz[]"), ("states", "text[]"), ("failures", "integer[]")])

LIST_HEARTBEATS = """
    SELECT h.heartbeat_id, h.service_id, s.heartbeat_name, s.service_name, h.time, h.status,
           h.run_id, s.team, s.priority
    FROM heartbeat_events h JOIN services s ON s.service_id = h.service_id
    {where}
    ORDER BY h.time DESC, h.heartbeat_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
"""

# One batch of retention: the oldest expired events, except those the down rule
# still needs (at or after the oldest of each service's `recent_beats`).
# `= ANY(ARRAY(...))` makes the ids an init-plan probed through the primary key;
# `IN (...)` let the planner hash-join against a scan of the whole table. Events
# of a service that no longer exists (a row deleted behind the store's back)
# expire like any other.
DELETE_EXPIRED_BATCH = """
    DELETE FROM heartbeat_events
    WHERE heartbeat_id = ANY(ARRAY(
        SELECT h.heartbeat_id
        FROM heartbeat_events h LEFT JOIN services s ON s.service_id = h.service_id
        WHERE h.time < now() - make_interval(days => %(days)s)
          AND h.time < COALESCE(s.recent_beats[cardinality(s.recent_beats)], 'infinity')
        ORDER BY h.time
        LIMIT %(batch)s
        FOR UPDATE OF h SKIP LOCKED))
"""

DELETE_SERVICE_EVENTS = "DELETE FROM heartbeat_events WHERE service_id = %s"


class RecordOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN_SERVICE = "unknown_service"
    INACTIVE_SERVICE = "inactive_service"


ACCEPTED = RecordOutcome.ACCEPTED


class IngestItem(NamedTuple):
    """One heartbeat to record: by name (``heartbeat_name``) or by id."""
    heartbeat_name: str | None
    service_id: int | None
    status: str
    run_id: str | None
    message: str | None = None  # a run's output (a job signal's)

    @property
    def plain(self) -> bool:
        """Neither a job signal nor a reported failure: what the steady statement records alone."""
        return status.counts_as_life(self.status) and not status.is_job_signal(
            self.status, self.run_id, self.message)


class IngestResult(NamedTuple):
    outcome: RecordOutcome
    # Of an accepted heartbeat: what ``heartbeat`` is built from, only when asked
    # for (batch callers that want outcomes only never pay for the row).
    heartbeat_id: int | None = None
    service: Row | None = None
    item: IngestItem | None = None
    time: dt.datetime | None = None

    @property
    def heartbeat(self) -> Row | None:
        if self.service is None:
            return None
        service, item = self.service, self.item
        return {"heartbeat_id": self.heartbeat_id, "service_id": service["service_id"],
                "heartbeat_name": service["heartbeat_name"], "service_name": service["service_name"],
                "time": self.time, "status": item.status, "run_id": item.run_id,
                "team": service["team"], "priority": service["priority"]}


UNKNOWN_SERVICE = IngestResult(RecordOutcome.UNKNOWN_SERVICE)
INACTIVE_SERVICE = IngestResult(RecordOutcome.INACTIVE_SERVICE)


def clock_of(row: Row, open_alert: str | None = None) -> lifecycle.Clock:
    return lifecycle.Clock(threshold=row["threshold"], activated_at=row["activated_at"],
                           interval_seconds=row["alert_interval_seconds"],
                           grace_seconds=row["grace_period_seconds"],
                           recent=tuple(row["recent_beats"] or ()), state=row["state"],
                           schedule=schedule.of(row.get("schedule"), row.get("timezone")),
                           failure_tolerance=row.get("failure_tolerance") or 0,
                           failures=row.get("consecutive_failures") or 0, open_alert=open_alert)


def delete_service_events(tx: Tx, service_id: int) -> None:
    """A service's events, deleted with the service (no foreign key cascades to
    them: the caller holds the service's row lock, which keeps the ingest from
    adding any meanwhile)."""
    tx.execute(DELETE_SERVICE_EVENTS, (service_id,))


class _Steady(NamedTuple):
    """What RECORD_STEADY_HEARTBEATS did, item by item."""
    results: list[IngestResult | None]  # None: left for the rule
    left: list[int]  # indexes of the items left for the rule
    item_services: list[int | None]  # the service each item named, by PostgreSQL (None: none)
    locked: list[Row]  # the locked services that were not steady, whole
    now: dt.datetime


def _steady_results(items: Sequence[IngestItem], rows: Sequence[Row]) -> _Steady:
    """Each item's result: accepted (a steady service), unknown (it named no
    service), or None, left for the rule (a locked service that was not steady)."""
    steady: dict[int, Row] = {}
    locked: list[Row] = []
    for row in rows:
        if row["heartbeat_ids"] is not None:
            last = row
        elif row["state"] is None:
            steady[row["service_id"]] = row
        else:
            locked.append(row)
    now, item_services = last["now"], last["item_services"]
    held = {row["service_id"] for row in locked}
    next_id = iter(sorted(last["heartbeat_ids"])).__next__
    results: list[IngestResult | None] = []
    left = []
    for index, (item, service_id) in enumerate(zip(items, item_services)):
        service = steady.get(service_id)
        if service is not None:
            results.append(IngestResult(ACCEPTED, next_id(), service, item, now))
        elif service_id in held:
            left.append(index)
            results.append(None)
        else:
            results.append(UNKNOWN_SERVICE)
    return _Steady(results, left, item_services, locked, now)


def _steady_statement(items: Sequence[IngestItem]) -> tuple[Prepared, dict[str, str]]:
    """RECORD_STEADY_HEARTBEATS for ``items``, with its plan chosen by their number."""
    statement = RECORD_FEW_STEADY_HEARTBEATS if len(items) <= SMALL_BATCH else RECORD_STEADY_HEARTBEATS
    return statement, {
        "names": text_array(i.heartbeat_name for i in items), "service_ids": int_array(i.service_id for i in items),
        "statuses": text_array(i.status for i in items), "run_ids": text_array(i.run_id for i in items),
        "plain": "{" + ",".join("t" if i.plain else "f" for i in items) + "}"}

class LifecycleStore:
    """What the stores whose writes go through the alert lifecycle share (this one
    and ``service_store.ServiceStore``): the database, the lifecycle policy, the
    maintenance windows, and whom to tell what a commit changed."""

    def __init__(self, db: Database, policy: LifecyclePolicy = LifecyclePolicy(),
                 on_committed: Callable[[Changes], None] | None = None, windows: WindowStore | None = None):
        self.db = db
        self.policy = policy
        self.windows = windows or WindowStore(db)
        # Told what a committed transaction changed (metrics, dispatcher wake-up).
        self.on_committed = on_committed or (lambda changes: None)


class HeartbeatStore(LifecycleStore):

    # --- heartbeats -----------------------------------------------------------

    def record_steady_heartbeats(self, items: Sequence[IngestItem]) -> list[IngestResult | None]:
        """The common case of a batch in one statement that PostgreSQL commits as it
        ends (no BEGIN or COMMIT of its own: one round trip): the heartbeats of steady
        services are recorded, unknown names are answered. The items of the other
        services (new, down, inactive, a reported failure) come back as None, their
        services untouched (only locked while the statement ran): ``record_heartbeats``
        records those."""
        return _steady_results(items, self.db.all(*_steady_statement(items))).results

    def record_heartbeats(self, items: Sequence[IngestItem]) -> list[IngestResult]:
        """Records a batch in one transaction; one result per item, in order."""
        changes = Changes()
        with self.db.transaction() as tx:
            steady = _steady_results(items, tx.all(*_steady_statement(items)))
            results = steady.results
            if steady.left:
                by_rule = self._record_by_rule(tx, changes, [items[index] for index in steady.left],
                                               [steady.item_services[index] for index in steady.left],
                                               steady.locked, steady.now)
                for index, result in zip(steady.left, by_rule):
                    results[index] = result
        self.on_committed(changes)
        return results  # type: ignore[return-value]

    def _record_by_rule(self, tx: Tx, changes: Changes, items: Sequence[IngestItem],
                        item_services: Sequence[int | None], locked: Sequence[Row],
                        now: dt.datetime) -> list[IngestResult]:
        """The heartbeats RECORD_STEADY_HEARTBEATS left, with the services it locked for them
        and the service each item named (always one of those)."""
        find = {row["service_id"]: row for row in locked}.__getitem__

        accepted: list[tuple[int, Row]] = []  # (item index, service)
        results: list[IngestResult | None] = [None] * len(items)
        for index, service_id in enumerate(item_services):
            service = find(service_id)
            if not service["active"]:
                results[index] = INACTIVE_SERVICE
            else:
                accepted.append((index, service))
        if not accepted:
            return results  # type: ignore[return-value]

        # service id -> (service, the indexes of its accepted items in order)
        by_service: dict[int, tuple[Row, list[int]]] = {}
        for index, service in accepted:
            by_service.setdefault(service["service_id"], (service, []))[1].append(index)
        open_alerts = self._open_alerts(tx, [sid for sid, (service, indexes) in by_service.items()
                                             if service["state"] == ServiceState.DOWN])
        clock_services, recent, deadlines, states, failures = [], [], [], [], []
        book = None
        for service_id, (service, indexes) in by_service.items():
            runs = [self._run(tx, service, items[index], now) for index in indexes]
            after = lifecycle.apply_heartbeats(clock_of(service, open_alerts.get(service_id)),
                                               [items[index].status for index in indexes], now,
                                               [ended for _, ended in runs])
            for transition in after.events:
                run = runs[transition.item][0] if transition.item is not None else None
                window = None
                if transition.alert is lifecycle.AlertChange.OPEN:
                    book = book or self.windows.book(tx)
                    window = book.open_for(ServiceKey(service_id, service["team"], service["heartbeat_name"]), now)
                alert_store.execute(tx, self.policy, changes, service_id, transition, muted=service["muted"],
                                    interval_seconds=service["alert_interval_seconds"], now=now, run=run,
                                    window=window)
            clock_services.append(service_id)
            recent.append(timestamp_array(after.recent))
            deadlines.append(after.deadline_at)
            states.append(after.state)
            failures.append(after.failures)
        inserted = tx.all(RECORD_HEARTBEATS, {
            "now": now, "event_services": int_array(service["service_id"] for _, service in accepted),
            "statuses": text_array(items[index].status for index, _ in accepted),
            "run_ids": text_array(items[index].run_id for index, _ in accepted),
            "clock_services": int_array(clock_services), "recent": text_array(recent),
            "deadlines": timestamp_array(deadlines), "states": text_array(states),
            "failures": int_array(failures)})
        for (index, service), row in zip(accepted, inserted):
            results[index] = IngestResult(ACCEPTED, row["heartbeat_id"], service, items[index], now)
        return results  # type: ignore[return-value]

    @staticmethod
    def _open_alerts(tx: Tx, service_ids: list[int]) -> dict[int, str]:
        """The reason of each service's open alert (of services that are down)."""
        if not service_ids:
            return {}
        return {row["service_id"]: row["reason"] for row in tx.all(
            "SELECT service_id, reason FROM alerts WHERE active AND service_id = ANY(%s)", (service_ids,))}

    @staticmethod
    def _run(tx: Tx, service: Row, item: IngestItem, now: dt.datetime) -> tuple[RunFacts | None, RunEnd | None]:
        """Starts or ends a run for a job signal (``run_store``): the run, and what its
        end tells the lifecycle. (None, None) for a heartbeat that is no job signal."""
        if not status.is_job_signal(item.status, item.run_id, item.message):
            return None, None
        service_id = service["service_id"]
        if status.is_start(item.status):
            run_store.start_run(tx, service_id, item.run_id, now, service["max_duration_seconds"])
            return None, None
        failed = not status.counts_as_life(item.status)
        ended = run_store.end_run(tx, service_id, item.run_id, failed, item.message, now)
        run = ended.run
        facts = RunFacts(run["job_run_id"], run["run_id"], run["status"], status.alert_output(run["message"]))
        if ended.overran:
            return facts, RunEnd.OVERRAN
        minimum = service["min_duration_seconds"]
        if (not failed and minimum and run["duration_ms"] is not None
                and run["duration_ms"] < minimum * 1000):
            return facts, RunEnd.TOO_FAST
        return facts, None

    def list_heartbeats(self, heartbeat_name: str, service_name: str, limit: int,
                        offset: int = 0) -> list[Row]:
        # Fixed fragments only, chosen so each filter can use its index.
        conditions = []
        if heartbeat_name:
            conditions.append("h.service_id = (SELECT service_id FROM services"
                              " WHERE lower(heartbeat_name) = lower(%(name)s))")
        if service_name:
            conditions.append("h.service_id = ANY(ARRAY(SELECT service_id FROM services"
                              " WHERE service_name = %(service_name)s))")
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        return self.db.all(LIST_HEARTBEATS.format(where=where),
                           {"name": heartbeat_name, "service_name": service_name, "limit": limit,
                            "offset": offset})

    # --- retention --------------------------------------------------------------

    def delete_expired_batch(self, days: int, batch: int) -> int:
        """Deletes up to ``batch`` events older than ``days`` (those the down rule
        still needs aside) in one short transaction; the number deleted."""
        with self.db.transaction() as tx:
            return tx.execute(DELETE_EXPIRED_BATCH, {"days": days, "batch": batch})
