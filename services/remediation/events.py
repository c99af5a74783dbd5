"""Every execution event goes through ``record_event``: the one function that
writes what happened to an execution (``playbook_execution_events``, in the
transaction of the change it records) and logs it.

The kinds: execution_started, step_started, step_completed, step_failed,
approval_requested, approved, rejected, cancelled, execution_completed,
execution_failed. ``detail`` is text Medic wrote
(a step's name and outcome); it never holds a secret's value: step outputs are
redacted before they get here (``variables.redact``).
"""
from __future__ import annotations

import datetime as dt
import logging

from medic.db import Tx

log = logging.getLogger(__name__)

KINDS = frozenset({
    "execution_started", "step_started", "step_completed", "step_failed", "approval_requested",
    "approved", "rejected", "cancelled", "execution_completed", "execution_failed"
})

INSERT_EVENT = """
    INSERT INTO playbook_execution_events (execution_id, kind, actor, step_index, detail, occurred_at)
    VALUES (%(execution_id)s, %(kind)s, %(actor)s, %(step_index)s, %(detail)s, %(at)s)
"""

MAX_DETAIL = 1000


def record_event(tx: Tx, execution_id: int, kind: str, at: dt.datetime, *, actor: str = "medic",
                 step_index: int | None = None, detail: str = "") -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown execution event {kind!r}")
    detail = detail[:MAX_DETAIL]
    tx.execute(INSERT_EVENT, {"execution_id": execution_id, "kind": kind, "actor": actor,
                              "step_index": step_index, "detail": detail, "at": at})
    log.info("execution %s: %s%s%s", execution_id, kind,
             f" (step {step_index})" if step_index is not None else "", f": {detail}" if detail else "")
