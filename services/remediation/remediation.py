"""Starting executions: by hand, by an outside system's webhook, and from the
alert events the heartbeat service hands over (``handle_alert_events``).

An alert event is taken once (its event_id is remembered in the transaction
that acts on it): a TRIGGER opens the alert's count of consecutive failures at
1, each REMINDER adds one, a RESOLVE closes it, an ACKNOWLEDGE changes nothing. After each TRIGGER or REMINDER
the trigger rule (``triggers.choose``) says which playbook, if any, starts now;
the execution is created in the same transaction, so an event is either fully
taken or not at all (the hand-off then sends it again).
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from medic import enums
from medic.db import Database, Row, Tx
from medic.errors import MedicError
from medic.v1 import events_pb2
from services.remediation import metrics, triggers
from services.remediation.execution_store import ExecutionStore, NewExecution
from services.remediation.heartbeat_client import HeartbeatClient
from services.remediation.playbook_store import PlaybookStore, TriggerPlaybooks

log = logging.getLogger(__name__)

REMEMBER_EVENT = """
    INSERT INTO remediation_alert_events (event_id) VALUES (%(event)s)
    ON CONFLICT (event_id) DO NOTHING
"""

# A TRIGGER or REMINDER in one statement: the event remembered, the alert's
# failures counted (nothing when the event was taken before: no row), the
# playbooks it started already, and the service's breaker lock taken (so that
# the breaker's count, in a later statement, sees every execution committed
# before it: BreakerPolicy.check).
COUNT_FAILURE = """
    WITH remembered AS (
        INSERT INTO remediation_alert_events (event_id) VALUES (%(event)s)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), counted AS (
        INSERT INTO remediation_alerts (alert_id, service_id, failures, updated_at)
        SELECT %(alert)s, %(service)s, 1, %(now)s FROM remembered
        ON CONFLICT (alert_id) DO UPDATE
            SET failures = remediation_alerts.failures + %(more)s, updated_at = %(now)s
        RETURNING failures
    )
    SELECT (SELECT failures FROM counted) AS failures,
           ARRAY(SELECT playbook_id FROM playbook_executions WHERE alert_id = %(alert)s) AS started,
           pg_advisory_xact_lock(hashtextextended('medic-remediation-breaker:' || %(service)s, 0)) AS locked
"""

# A batch's statements (``_take_batch``).
REMEMBER_EVENTS = """
    INSERT INTO remediation_alert_events (event_id) SELECT unnest(%(ids)s::text[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""

LOCK_COUNTS = "SELECT alert_id, failures FROM remediation_alerts WHERE alert_id = ANY(%(alerts)s::bigint[]) FOR UPDATE"

STARTED_FOR_ALERTS = """
    SELECT alert_id, playbook_id FROM playbook_executions WHERE alert_id = ANY(%(alerts)s::bigint[])
"""

WRITE_COUNTS = """
    INSERT INTO remediation_alerts (alert_id, service_id, failures, resolved_at, updated_at)
    SELECT a, s, f, CASE WHEN r THEN %(now)s END, %(now)s
    FROM unnest(%(alerts)s::bigint[], %(services)s::bigint[], %(failures)s::int[], %(resolved)s::bool[])
        AS t(a, s, f, r)
    ON CONFLICT (alert_id) DO UPDATE SET failures = EXCLUDED.failures, updated_at = EXCLUDED.updated_at,
        resolved_at = coalesce(EXCLUDED.resolved_at, remediation_alerts.resolved_at)
"""

RESOLVE = """
    INSERT INTO remediation_alerts (alert_id, service_id, failures, resolved_at, updated_at)
    VALUES (%(alert)s, %(service)s, 0, %(now)s, %(now)s)
    ON CONFLICT (alert_id) DO UPDATE SET resolved_at = %(now)s, updated_at = %(now)s
"""

# Alert events taken at the same time (each holds a database connection meanwhile).
TAKERS = 4

BUILT_IN = ("SERVICE_NAME", "SERVICE_ID", "HEARTBEAT_NAME", "ALERT_ID", "PLAYBOOK_NAME", "PLAYBOOK_ID",
            "EXECUTION_ID")


class _OneByOne(Exception):
    """A batch that has to be taken one event at a time."""


@dataclass(eq=False)
class Remediation:
    db: Database
    playbooks: PlaybookStore
    executions: ExecutionStore
    heartbeat: HeartbeatClient
    _: KW_ONLY
    clock: Callable[[], dt.datetime]
    wake: Callable[[], None]

    def __post_init__(self):
        self._takers = concurrent.futures.ThreadPoolExecutor(TAKERS, thread_name_prefix="remediation-take")

    def close(self) -> None:
        self._takers.shutdown(wait=True, cancel_futures=True)

    def execute(self, playbook_id: int, service_id: int | None, variables: dict[str, Any], *,
                trigger: str, actor: str) -> tuple[Row, Row]:
        """(the new execution, its playbook). NotFound for an unknown playbook or
        service; CircuitOpen when the service's breaker refuses it."""
        playbook = self.playbooks.get(playbook_id)
        context = dict(variables)
        if service_id is not None:
            facts = self.heartbeat.service(service_id)
            context.update(SERVICE_ID=facts.service_id, SERVICE_NAME=facts.service_name,
                           HEARTBEAT_NAME=facts.heartbeat_name)
        execution = self.executions.create(
            NewExecution(playbook=playbook, trigger=trigger, actor=actor, variables=context,
                         service_id=service_id), self.clock())
        metrics.EXECUTIONS_STARTED.labels(trigger).inc()
        self.wake()
        return execution, playbook

    def handle_alert_events(self, items: list[events_pb2.AlertEvent]) -> list[list[int] | MedicError]:
        """For each event, the executions it started, or the error that kept it
        from being taken (the hand-off sends it again).

        A batch is taken in one transaction of a few statements, whatever its
        size (``_take_batch``), so a burst of alerts (one monitor pass opening a
        hundred) reaches the engine at once. When that cannot be (a database
        error, or a circuit breaker that refuses one of its executions), its
        events are taken one by one (``_take``, each in its own transaction:
        those of different alerts side by side, ``TAKERS`` at a time, those of
        one alert in order), each execution handed to the engine as soon as it
        is committed."""
        rules = self.playbooks.trigger_playbooks()
        try:
            results: list[list[int] | MedicError] = self._take_batch(items, rules)
        except (MedicError, _OneByOne) as exc:
            if isinstance(exc, MedicError):
                log.warning("a batch of %d alert events was not taken at once (%s); taking them one by one",
                            len(items), exc.message)
        else:
            if any(results):
                self.wake()
            return results
        results = [[] for _ in items]
        by_alert: dict[int, list[int]] = {}
        for index, event in enumerate(items):
            by_alert.setdefault(event.alert_id, []).append(index)

        def take_in_order(indexes: list[int]) -> None:
            for index in indexes:
                try:
                    with self.db.transaction() as tx:
                        started = self._take(tx, items[index], rules)
                except MedicError as exc:
                    results[index] = exc
                    # A later event of this alert waits for this one (the hand-off keeps their order).
                    for later in indexes[indexes.index(index) + 1:]:
                        results[later] = exc
                    return
                results[index] = started
                if started:
                    self.wake()

        groups = list(by_alert.values())
        if len(groups) == 1:
            take_in_order(groups[0])
        else:
            list(self._takers.map(take_in_order, groups))
        return results

    def _take_batch(self, items: list[events_pb2.AlertEvent], rules: TriggerPlaybooks) -> list[list[int]]:
        """Every event of the batch in one transaction: the same outcome as
        ``_take`` for each in turn (see there), with the alerts' counts read
        and written once and the executions inserted together. Raises
        ``_OneByOne`` (nothing written) when the breaker would refuse one."""
        now = self.clock()
        results: list[list[int]] = [[] for _ in items]
        with self.db.transaction() as tx:
            fresh = {r["event_id"] for r in tx.all(REMEMBER_EVENTS, {"ids": [e.event_id for e in items]})}
            alerts = sorted({e.alert_id for e in items if e.event_id in fresh})
            if not alerts:
                return results
            counts = {r["alert_id"]: r["failures"] for r in tx.all(LOCK_COUNTS, {"alerts": alerts})}
            started: dict[int, set[int]] = {}
            for row in tx.all(STARTED_FOR_ALERTS, {"alerts": alerts}):
                started.setdefault(row["alert_id"], set()).add(row["playbook_id"])
            counted: dict[int, dict] = {}  # alert -> its row as it will be written
            wanted: list[tuple[int, NewExecution]] = []
            for index, event in enumerate(items):
                if event.event_id not in fresh:
                    continue
                fresh.discard(event.event_id)  # a repeat within the batch is taken once too
                kind = enums.ALERT_EVENT_KIND.names.get(event.kind)
                if kind not in ("trigger", "reminder", "resolve"):
                    continue  # an acknowledgement: no failure, nothing to start
                alert = counted.setdefault(event.alert_id, {
                    "service": event.service.service_id, "failures": counts.get(event.alert_id), "resolved": False})
                if kind == "resolve":
                    alert["failures"] = 0 if alert["failures"] is None else alert["failures"]
                    alert["resolved"] = True
                    continue
                alert["failures"] = 1 if alert["failures"] is None else \
                    alert["failures"] + (1 if kind == "reminder" else 0)
                already = started.setdefault(event.alert_id, set())
                chosen = triggers.choose(rules.rules, (event.service.heartbeat_name, event.service.service_name),
                                         alert["failures"], already)
                if chosen is not None:
                    already.add(chosen)
                    wanted.append((index, self._new_execution(event, rules.playbooks[chosen], alert["failures"])))
            ids = sorted(counted)
            tx.execute(WRITE_COUNTS, {"alerts": ids, "services": [counted[a]["service"] for a in ids],
                                      "failures": [counted[a]["failures"] for a in ids],
                                      "resolved": [counted[a]["resolved"] for a in ids], "now": now})
            rows = self.executions.create_many_in(tx, [new for _, new in wanted], now)
            if rows is None:
                raise _OneByOne()
        created = {(row["alert_id"], row["playbook_id"]): row["execution_id"] for row in rows}
        for index, new in wanted:
            execution_id = created.get((new.alert_id, new.playbook["playbook_id"]))
            if execution_id is not None:
                results[index] = [execution_id]
                self._log_start(items[index], new, execution_id)
        return results

    @staticmethod
    def _new_execution(event: events_pb2.AlertEvent, playbook: Row, failures: int) -> NewExecution:
        service = event.service
        variables = {"SERVICE_NAME": service.service_name, "HEARTBEAT_NAME": service.heartbeat_name,
                     "SERVICE_ID": service.service_id, "ALERT_ID": event.alert_id,
                     "TEAM": service.team, "RUNBOOK": service.runbook,
                     "PRIORITY": enums.PRIORITY.names.get(service.priority, ""),
                     "CONSECUTIVE_FAILURES": failures}
        return NewExecution(playbook=playbook, trigger="alert", actor="medic", variables=variables,
                            service_id=service.service_id, alert_id=event.alert_id)

    @staticmethod
    def _log_start(event: events_pb2.AlertEvent, new: NewExecution, execution_id: int) -> None:
        metrics.EXECUTIONS_STARTED.labels("alert").inc()
        log.info("alert %s (%s, %d consecutive failures) started playbook %r: execution %s", event.alert_id,
                 event.service.heartbeat_name, new.variables["CONSECUTIVE_FAILURES"], new.playbook["name"],
                 execution_id)

    def _take(self, tx: Tx, event: events_pb2.AlertEvent, rules: TriggerPlaybooks) -> list[int]:
        now = self.clock()
        kind = enums.ALERT_EVENT_KIND.names.get(event.kind)
        service = event.service
        params = {"event": event.event_id, "alert": event.alert_id, "service": service.service_id, "now": now}
        if kind not in ("trigger", "reminder"):
            if tx.execute(REMEMBER_EVENT, params) and kind == "resolve":
                tx.execute(RESOLVE, params)
            return []  # a resolve closes the count; an acknowledgement changes nothing
        counted = tx.one(COUNT_FAILURE, {**params, "more": 1 if kind == "reminder" else 0})
        failures = counted["failures"]
        if failures is None:
            return []  # taken before
        chosen = triggers.choose(rules.rules, (service.heartbeat_name, service.service_name), failures,
                                 set(counted["started"]))
        if chosen is None:
            return []
        # The playbook as the batch read it; one deleted since fails the insert
        # (its reference), and the hand-off sends the event again.
        new = self._new_execution(event, rules.playbooks[chosen], failures)
        row, refused = self.executions.create_in(tx, new, now, breaker_locked=True)
        if refused is not None:
            log.warning("alert %s did not start playbook %r: %s", event.alert_id, new.playbook["name"],
                        refused.message)
            return []
        if row is None:
            return []
        self._log_start(event, new, row["execution_id"])
        return [row["execution_id"]]
