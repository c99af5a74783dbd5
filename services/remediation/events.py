"""Every execution event goes through ``record_event``: the one function that
writes what happened to an execution, in the transaction of the change it
records, to two places:

* the audit log (``audit_events``, ``medic.audit.record``): every kind but
  ``step_started``, as the original's remediation action types
  (``execution_started``, ``step_completed``, ``step_failed``,
  ``approval_requested``, ``approved``, ``rejected``, ``execution_completed``,
  ``execution_failed``) plus ``cancelled``; ``GET /v2/audit-logs?execution_id=N``
  lists them. The circuit breaker's trips are audited too (``breaker.py``).
* the execution's own step view (``playbook_execution_events``), which
  ``GetExecution`` answers: every kind, ``step_started`` included (a step
  started again after a crash shows twice there). The remediation service
  reads only its own tables, never the audit log (heartbeat answers that), so
  this view stays beside it.

``detail`` is text Medic wrote (a step's name and outcome); it never holds a
secret's value: step outputs and errors are redacted before they get here
(``variables.redact``), and a step's headers and body are never recorded.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from medic import audit
from medic.db import Tx

log = logging.getLogger(__name__)

KINDS = frozenset({
    "execution_started", "step_started", "step_completed", "step_failed", "approval_requested",
    "approved", "rejected", "cancelled", "execution_completed", "execution_failed"
})
# Progress, not an outcome or a decision: the step view shows it, the audit log does not.
NOT_AUDITED = frozenset({"step_started"})

INSERT_EVENT = """
    INSERT INTO playbook_execution_events (execution_id, kind, actor, step_index, detail, occurred_at)
    VALUES (%(execution_id)s, %(kind)s, %(actor)s, %(step_index)s, %(detail)s, %(at)s)
"""

MAX_DETAIL = 1000


def record_event(tx: Tx, execution: Mapping[str, Any], kind: str, at: dt.datetime, *, actor: str = "medic",
                 who: audit.Who | None = audit.SYSTEM, step_index: int | None = None, detail: str = "",
                 before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None) -> None:
    """Called after a statement of ``tx`` (the change it records). ``execution``:
    its row (or at least execution_id, service_id, playbook_id, playbook_name).
    ``actor``: the step view's actor (a principal, ``timeout``, ``medic``);
    ``who``: the audit log's (None: the current call's caller)."""
    if kind not in KINDS:
        raise ValueError(f"unknown execution event {kind!r}")
    execution_id = execution["execution_id"]
    detail = detail[:MAX_DETAIL]
    # Nobody reads what the insert answers: it goes with the COMMIT, no round trip of its own.
    tx.before_commit(INSERT_EVENT, {"execution_id": execution_id, "kind": kind, "actor": actor,
                                    "step_index": step_index, "detail": detail, "at": at})
    if kind not in NOT_AUDITED:
        details = {"playbook_id": execution.get("playbook_id"), "playbook_name": execution.get("playbook_name"),
                   "detail": detail}
        if step_index is not None:
            details["step_index"] = step_index
        audit.record(tx, source="remediation", action_type=kind, resource="execution", resource_id=execution_id,
                     execution_id=execution_id, service_id=execution.get("service_id"), before=before,
                     after=after, details=details, who=who)
    log.info("execution %s: %s%s%s", execution_id, kind,
             f" (step {step_index})" if step_index is not None else "", f": {detail}" if detail else "")
