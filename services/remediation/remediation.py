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

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from medic import enums
from medic.db import Database, Row, Tx
from medic.errors import MedicError
from medic.v1 import events_pb2
from services.remediation import metrics, triggers
from services.remediation.execution_store import ExecutionStore, NewExecution
from services.remediation.heartbeat_client import HeartbeatClient
from services.remediation.playbook_store import PlaybookStore

log = logging.getLogger(__name__)

REMEMBER_EVENT = """
    INSERT INTO remediation_alert_events (event_id) VALUES (%(event)s)
    ON CONFLICT (event_id) DO NOTHING
"""

COUNT_FAILURE = """
    INSERT INTO remediation_alerts (alert_id, service_id, failures, updated_at)
    VALUES (%(alert)s, %(service)s, 1, %(now)s)
    ON CONFLICT (alert_id) DO UPDATE
        SET failures = remediation_alerts.failures + %(more)s, updated_at = %(now)s
    RETURNING failures
"""

RESOLVE = """
    INSERT INTO remediation_alerts (alert_id, service_id, failures, resolved_at, updated_at)
    VALUES (%(alert)s, %(service)s, 0, %(now)s, %(now)s)
    ON CONFLICT (alert_id) DO UPDATE SET resolved_at = %(now)s, updated_at = %(now)s
"""

STARTED_FOR_ALERT = "SELECT playbook_id FROM playbook_executions WHERE alert_id = %(alert)s"

BUILT_IN = ("SERVICE_NAME", "SERVICE_ID", "HEARTBEAT_NAME", "ALERT_ID", "PLAYBOOK_NAME", "PLAYBOOK_ID",
            "EXECUTION_ID")


class Remediation:
    def __init__(self, db: Database, playbooks: PlaybookStore, executions: ExecutionStore,
                 heartbeat: HeartbeatClient, *, clock: Callable[[], dt.datetime],
                 wake: Callable[[], None]):
        self.db = db
        self.playbooks = playbooks
        self.executions = executions
        self.heartbeat = heartbeat
        self.clock = clock
        self.wake = wake

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
        from being taken (the hand-off sends it again)."""
        rules = self.playbooks.trigger_rules()
        results: list[list[int] | MedicError] = []
        started_any = False
        for event in items:
            try:
                with self.db.transaction() as tx:
                    started = self._take(tx, event, rules)
            except MedicError as exc:
                results.append(exc)
                continue
            started_any = started_any or bool(started)
            results.append(started)
        if started_any:
            self.wake()
        return results

    def _take(self, tx: Tx, event: events_pb2.AlertEvent, rules: list[triggers.TriggerRule]) -> list[int]:
        if not tx.execute(REMEMBER_EVENT, {"event": event.event_id}):
            return []  # taken before
        now = self.clock()
        kind = enums.ALERT_EVENT_KIND.names.get(event.kind)
        service = event.service
        params = {"alert": event.alert_id, "service": service.service_id, "now": now}
        if kind == "resolve":
            tx.execute(RESOLVE, params)
            return []
        if kind not in ("trigger", "reminder"):  # an acknowledgement: no failure, nothing to start
            return []
        failures = tx.one(COUNT_FAILURE, {**params, "more": 1 if kind == "reminder" else 0})["failures"]
        started = {r["playbook_id"] for r in tx.all(STARTED_FOR_ALERT, params)}
        chosen = triggers.choose(rules, (service.heartbeat_name, service.service_name), failures, started)
        if chosen is None:
            return []
        playbook = tx.one("SELECT playbook_id, name, definition, approval, approval_timeout_minutes "
                          "FROM playbooks WHERE playbook_id = %(id)s", {"id": chosen})
        if playbook is None:  # deleted meanwhile
            return []
        variables = {"SERVICE_NAME": service.service_name, "HEARTBEAT_NAME": service.heartbeat_name,
                     "SERVICE_ID": service.service_id, "ALERT_ID": event.alert_id,
                     "TEAM": service.team, "RUNBOOK": service.runbook,
                     "PRIORITY": enums.PRIORITY.names.get(service.priority, ""),
                     "CONSECUTIVE_FAILURES": failures}
        row, refused = self.executions.create_in(tx, NewExecution(
            playbook=playbook, trigger="alert", actor="medic", variables=variables,
            service_id=service.service_id, alert_id=event.alert_id), now)
        if refused is not None:
            log.warning("alert %s did not start playbook %r: %s", event.alert_id, playbook["name"], refused.message)
            return []
        if row is None:
            return []
        metrics.EXECUTIONS_STARTED.labels("alert").inc()
        log.info("alert %s (%s, %d consecutive failures) started playbook %r: execution %s", event.alert_id,
                 service.heartbeat_name, failures, playbook["name"], row["execution_id"])
        return [row["execution_id"]]
