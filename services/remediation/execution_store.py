"""The executions: ``playbook_executions``, ``playbook_step_results`` and their
events, each state change committed on its own, so a crash loses at most the
step that was running (never one that completed).

Times come from the caller (the engine's clock), never from ``now()``, so that
tests can move time forward (an approval timeout, a wait).

A worker claims a due execution (``claim``) with a lease: its ``due_at`` moves
to the end of the lease, and a worker that dies mid-step has the execution
taken over once the lease ends. Every later change is conditional on the
execution still being active, so a cancel wins over a step that ends after it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg2.extras import Json

from medic import audit
from medic.db import Database, Row, Tx
from medic.errors import FailedPrecondition, NotFound
from services.remediation import events
from services.remediation.breaker import BreakerPolicy, CircuitOpen

ACTIVE = ("running", "waiting")
ENDED = ("completed", "failed", "cancelled", "rejected")

EXECUTION_COLUMNS = """execution_id, playbook_id, playbook_name, definition, service_id, alert_id, trigger,
    status, current_step, variables, approval, approval_deadline, decided_by, decided_at, approval_posted_at,
    approval_message_channel, approval_message_ts, due_at, error, created_at, started_at, completed_at"""

NEW_COLUMNS = ("playbook_id", "playbook_name", "definition", "service_id", "alert_id", "trigger", "status",
               "variables", "approval", "approval_deadline", "due_at", "created_at", "started_at", "updated_at")

INSERT_EXECUTION = f"""
    INSERT INTO playbook_executions ({", ".join(NEW_COLUMNS)})
    VALUES ({", ".join(f"%({c})s" for c in NEW_COLUMNS)})
    ON CONFLICT (alert_id, playbook_id) WHERE alert_id IS NOT NULL DO NOTHING
    RETURNING {EXECUTION_COLUMNS}
"""

INSERT_EXECUTIONS = f"""
    INSERT INTO playbook_executions ({", ".join(NEW_COLUMNS)})
    VALUES %s
    ON CONFLICT (alert_id, playbook_id) WHERE alert_id IS NOT NULL DO NOTHING
    RETURNING {EXECUTION_COLUMNS}
"""


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in EXECUTION_COLUMNS.split(","))


CLAIM = f"""
    WITH due AS (
        SELECT execution_id FROM playbook_executions
        WHERE due_at <= %(now)s
        ORDER BY due_at
        LIMIT %(batch)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE playbook_executions e SET due_at = %(now)s + make_interval(secs => %(lease)s)
    FROM due WHERE e.execution_id = due.execution_id
    RETURNING {_qualified("e")},
        (SELECT r.status FROM playbook_step_results r
         WHERE r.execution_id = e.execution_id AND r.step_index = e.current_step) AS step_status,
        (SELECT r.started_at FROM playbook_step_results r
         WHERE r.execution_id = e.execution_id AND r.step_index = e.current_step) AS step_started_at
"""

STEP_COLUMNS = "execution_id, step_index, name, type, status, started_at, completed_at, attempts, output, error"

_MOVE_SET = """status = %(status)s, current_step = %(step)s, due_at = %(due)s,
        started_at = coalesce(started_at, %(now)s), completed_at = %(completed)s, error = %(error)s,
        updated_at = %(now)s"""
_MOVE_WHERE = "execution_id = %(id)s AND status IN ('running', 'waiting') AND current_step = %(expected)s"

MOVE = f"UPDATE playbook_executions SET {_MOVE_SET} WHERE {_MOVE_WHERE}"

# The execution moved to its step (still active there) and the step begun, in
# one statement (one round trip); nothing when it was no longer active.
MOVE_AND_BEGIN_STEP = f"""
    WITH moved AS (
        UPDATE playbook_executions SET {_MOVE_SET} WHERE {_MOVE_WHERE} RETURNING execution_id
    )
    INSERT INTO playbook_step_results (execution_id, step_index, name, type, status, started_at, attempts)
    SELECT execution_id, %(step)s, %(name)s, %(type)s, 'running', %(now)s, 1 FROM moved
    ON CONFLICT (execution_id, step_index) DO UPDATE
        SET status = 'running', started_at = %(now)s, attempts = playbook_step_results.attempts + 1,
            completed_at = NULL, output = '', error = ''
"""

# The step's outcome and the execution's move, in one statement: the execution
# moves only when this worker finished the step (it was still running).
FINISH_STEP_AND_MOVE = f"""
    WITH finished AS (
        UPDATE playbook_step_results SET status = %(outcome)s, completed_at = %(now)s, output = %(output)s,
            error = %(step_error)s
        WHERE execution_id = %(id)s AND step_index = %(index)s AND status = 'running'
        RETURNING execution_id
    ), moved AS (
        UPDATE playbook_executions SET {_MOVE_SET}
        WHERE {_MOVE_WHERE} AND EXISTS (SELECT 1 FROM finished)
        RETURNING execution_id
    )
    SELECT EXISTS (SELECT 1 FROM finished) AS finished, EXISTS (SELECT 1 FROM moved) AS moved
"""

# A wait or condition step holds no request in flight: a cancel ends it at once.
CANCEL_WAITING_STEP = """
    UPDATE playbook_step_results SET status = 'cancelled', completed_at = %(now)s,
        error = 'cancelled while it was waiting'
    WHERE execution_id = %(id)s AND status = 'running' AND type IN ('wait', 'condition')
"""

TIMEOUT = "timeout"  # who approved an execution whose approval timed out


def execution_settings(row: Row) -> dict[str, Any]:
    """What the audit log records of a new execution."""
    return {k: row[k] for k in ("playbook_id", "playbook_name", "service_id", "alert_id", "trigger", "status",
                                "approval", "approval_deadline", "variables")}


@dataclass(frozen=True)
class NewExecution:
    playbook: Row                 # a playbooks row
    trigger: str                  # alert | api | webhook
    actor: str
    variables: dict[str, Any]
    service_id: int | None = None
    alert_id: int | None = None


def _new_row(new: NewExecution, now: dt.datetime) -> dict[str, Any]:
    """The ``NEW_COLUMNS`` of a new execution."""
    playbook = new.playbook
    approval = playbook["approval"]
    running = approval == "none"
    return {
        "playbook_id": playbook["playbook_id"], "playbook_name": playbook["name"],
        "definition": Json(playbook["definition"]), "service_id": new.service_id, "alert_id": new.alert_id,
        "trigger": new.trigger, "status": "running" if running else "pending_approval",
        "variables": Json(new.variables), "approval": approval,
        "approval_deadline": (now + dt.timedelta(minutes=playbook["approval_timeout_minutes"])
                              if approval == "timeout" else None),
        # Pending approval: due at once to post the request, then at its deadline.
        "due_at": now, "created_at": now, "started_at": now if running else None, "updated_at": now}


class ExecutionStore:
    def __init__(self, db: Database, breaker: BreakerPolicy):
        self.db = db
        self.breaker = breaker

    # --- creating ---------------------------------------------------------------------

    def create(self, new: NewExecution, now: dt.datetime) -> Row | None:
        """The new execution (None when its alert already started this playbook);
        CircuitOpen when the service's breaker refuses it (the trip recorded)."""
        with self.db.transaction() as tx:
            row, refused = self.create_in(tx, new, now)
        if refused is not None:
            raise refused
        return row

    def create_in(self, tx: Tx, new: NewExecution, now: dt.datetime, *,
                  breaker_locked: bool = False) -> tuple[Row | None, CircuitOpen | None]:
        """``create`` in the caller's transaction: (the execution or None, the
        breaker's refusal or None); a refusal's trip is written in ``tx``.
        ``breaker_locked``: ``tx`` holds the service's breaker lock already."""
        if new.service_id is not None:
            refused = self.breaker.check(tx, new.service_id, new.playbook["playbook_id"], now,
                                         locked=breaker_locked)
            if refused is not None:
                return None, refused
        row = tx.one(INSERT_EXECUTION, _new_row(new, now))
        if row is not None:
            self._started(tx, new, row, now)
        return row, None

    def create_many_in(self, tx: Tx, news: list[NewExecution], now: dt.datetime) -> list[Row] | None:
        """``create_in`` for many executions at once (a burst of alerts), in a
        few statements; None, with nothing written, when the breaker would
        refuse any of them (the caller then creates them one by one, so that
        each refusal is recorded as ``create_in`` does). An execution whose
        alert already started its playbook is left out."""
        if not news:
            return []
        if self.breaker.would_refuse(tx, [n.service_id for n in news if n.service_id is not None], now):
            return None
        rows = tx.values(INSERT_EXECUTIONS, [tuple(_new_row(n, now)[c] for c in NEW_COLUMNS) for n in news],
                         fetch=True)
        by_key = {(n.alert_id, n.playbook["playbook_id"]): n for n in news}
        for row in rows:
            self._started(tx, by_key[(row["alert_id"], row["playbook_id"])], row, now)
        return rows

    @staticmethod
    def _started(tx: Tx, new: NewExecution, row: Row, now: dt.datetime) -> None:
        # An alert's execution is Medic's doing; one started by hand or webhook, its caller's.
        events.record_event(tx, row, "execution_started", now, actor=new.actor,
                            who=audit.SYSTEM if new.trigger == "alert" else None,
                            detail=f"playbook {new.playbook['name']!r} ({new.trigger})",
                            after=execution_settings(row))

    # --- the engine's side -------------------------------------------------------------

    def claim(self, batch: int, lease_seconds: float, now: dt.datetime) -> list[Row]:
        """Leases up to ``batch`` due executions, each with its current step's
        ``step_status`` and ``step_started_at`` (None: not begun), in one
        statement (one round trip)."""
        return self.db.all(CLAIM, {"batch": batch, "lease": lease_seconds, "now": now})

    def begin_step(self, execution: Row, step: dict, now: dt.datetime, *, status: str,
                   due_at: dt.datetime) -> bool:
        """Marks the current step running (and the execution ``status``, due at
        ``due_at``: the end of a wait, or the lease of a step that runs now).
        False when the execution is no longer active (cancelled)."""
        index = execution["current_step"]
        with self.db.transaction() as tx:
            if not tx.execute(MOVE_AND_BEGIN_STEP, {
                    "status": status, "step": index, "due": due_at, "now": now, "expected": index, "completed": None,
                    "error": None, "id": execution["execution_id"], "name": step["name"], "type": step["type"]}):
                return False
            events.record_event(tx, execution, "step_started", now, step_index=index,
                                detail=f"{step['type']} step {step['name']!r}")
        return True

    def reschedule(self, execution: Row, due_at: dt.datetime, now: dt.datetime, status: str = "waiting") -> None:
        with self.db.transaction() as tx:
            tx.execute(MOVE, {"status": status, "step": execution["current_step"], "due": due_at, "now": now,
                              "expected": execution["current_step"], "completed": None, "error": None,
                              "id": execution["execution_id"]})

    def finish_step(self, execution: Row, step: dict, now: dt.datetime, *, ok: bool, output: str,
                    error: str, fail_execution: bool, keep_until: dt.datetime) -> str | None:
        """Records the current step's outcome and moves the execution on: to the
        next step, or to its end (completed, or failed when ``fail_execution``).
        The worker goes on with the next step itself: the execution stays leased
        to it until ``keep_until`` (no other worker takes it meanwhile; after a
        crash, any worker does then). Returns the execution's new status (None
        when it was no longer active)."""
        index = execution["current_step"]
        steps = execution["definition"]["steps"]
        execution_id = execution["execution_id"]
        if fail_execution:
            status, due, completed, failure = "failed", None, now, f"step {step['name']!r} failed: {error}"
        elif index + 1 >= len(steps):
            status, due, completed, failure = "completed", None, now, None
        else:
            status, due, completed, failure = "running", keep_until, None, None
        # PostgreSQL text cannot hold NUL (a script may print anything).
        output, error = output.replace("\0", "\ufffd"), error.replace("\0", "\ufffd")
        with self.db.transaction() as tx:
            done = tx.one(FINISH_STEP_AND_MOVE, {
                "outcome": "completed" if ok else "failed", "output": output, "step_error": error,
                "status": status, "step": index + 1 if status != "failed" else index, "due": due, "now": now,
                "completed": completed, "error": failure, "expected": index, "id": execution_id, "index": index})
            if not done["finished"]:
                return None  # finished already (by a worker that took over after a lease ended)
            moved = done["moved"]
            events.record_event(tx, execution, "step_completed" if ok else "step_failed", now,
                                step_index=index, detail=f"{step['name']}: {error or 'ok'}",
                                before={"step": step["name"], "type": step["type"], "status": "running"},
                                after={"step": step["name"], "type": step["type"],
                                       "status": "completed" if ok else "failed", "error": error})
            if moved and status in ("completed", "failed"):
                events.record_event(tx, execution, f"execution_{status}", now,
                                    step_index=index if status == "failed" else None,
                                    detail=failure or f"{len(steps)} steps",
                                    before={"status": execution["status"]},
                                    after={"status": status, "error": failure})
        return status if moved else None

    def fail(self, execution: Row, reason: str, now: dt.datetime) -> None:
        """Ends an active execution as failed without a step outcome (e.g. its
        definition cannot run)."""
        with self.db.transaction() as tx:
            if tx.execute(MOVE, {"status": "failed", "step": execution["current_step"], "due": None, "now": now,
                                 "completed": now, "error": reason, "expected": execution["current_step"],
                                 "id": execution["execution_id"]}):
                events.record_event(tx, execution, "execution_failed", now, detail=reason,
                                    before={"status": execution["status"]}, after={"status": "failed", "error": reason})

    def approval_posted(self, execution: Row, now: dt.datetime, message: tuple[str, str] | None = None) -> bool:
        """The approval request was posted (``message``: its Slack channel and
        ts), or there is nowhere to post it: due again only at its deadline, if
        it has one. The first time, that is the moment approval was requested
        (``approval_requested``). False when it was decided meanwhile."""
        channel, ts = message or (None, None)
        with self.db.transaction() as tx:
            row = tx.one(f"""
                WITH old AS (SELECT execution_id, approval_posted_at FROM playbook_executions
                             WHERE execution_id = %(id)s FOR UPDATE)
                UPDATE playbook_executions e SET approval_posted_at = %(now)s, due_at = e.approval_deadline,
                    approval_message_channel = coalesce(%(channel)s, e.approval_message_channel),
                    approval_message_ts = coalesce(%(ts)s, e.approval_message_ts)
                FROM old WHERE e.execution_id = old.execution_id AND e.status = 'pending_approval'
                RETURNING {_qualified("e")}, old.approval_posted_at IS NULL AS first""",
                         {"now": now, "id": execution["execution_id"], "channel": channel, "ts": ts})
            if row is not None and row["first"]:
                deadline = row["approval_deadline"]
                events.record_event(
                    tx, row, "approval_requested", now,
                    detail="approval required" if deadline is None
                    else f"approved automatically at {deadline.isoformat()} without a decision",
                    after={"status": "pending_approval", "approval": row["approval"],
                           "approval_deadline": deadline})
        return row is not None

    # --- people's decisions ------------------------------------------------------------

    def approve(self, execution_id: int, actor: str, now: dt.datetime) -> Row:
        return self._decide(execution_id, actor, now, approve=True)

    def reject(self, execution_id: int, actor: str, now: dt.datetime) -> Row:
        return self._decide(execution_id, actor, now, approve=False)

    def _decide(self, execution_id: int, actor: str, now: dt.datetime, *, approve: bool) -> Row:
        with self.db.transaction() as tx:
            row = tx.one(f"""
                UPDATE playbook_executions
                SET status = %(status)s, decided_by = %(actor)s, decided_at = %(now)s, updated_at = %(now)s,
                    due_at = %(due)s, started_at = %(started)s, completed_at = %(completed)s
                WHERE execution_id = %(id)s AND status = 'pending_approval'
                RETURNING {EXECUTION_COLUMNS}""",
                         {"status": "running" if approve else "rejected", "actor": actor, "now": now,
                          "due": now if approve else None, "started": now if approve else None,
                          "completed": None if approve else now, "id": execution_id})
            if row is None:
                self._refuse(tx, execution_id, "waiting for approval")
            # A timeout's approval is Medic's; a decision, its caller's.
            events.record_event(tx, row, "approved" if approve else "rejected", now, actor=actor,
                                who=audit.SYSTEM if actor == TIMEOUT else None,
                                before={"status": "pending_approval"},
                                after={"status": row["status"], "decided_by": actor})
        return row

    def cancel(self, execution_id: int, actor: str, now: dt.datetime) -> Row:
        """Ends an execution that has not ended. A wait or condition step it was
        waiting in is cancelled with it; a webhook or script step in flight
        finishes, and its outcome is recorded."""
        with self.db.transaction() as tx:
            row = tx.one(f"""
                WITH old AS (SELECT execution_id, status FROM playbook_executions
                             WHERE execution_id = %(id)s FOR UPDATE)
                UPDATE playbook_executions e SET status = 'cancelled', due_at = NULL, completed_at = %(now)s,
                    updated_at = %(now)s
                FROM old WHERE e.execution_id = old.execution_id
                    AND old.status IN ('pending_approval', 'running', 'waiting')
                RETURNING {_qualified("e")}, old.status AS previous_status""", {"now": now, "id": execution_id})
            if row is None:
                self._refuse(tx, execution_id, "still running")
            tx.execute(CANCEL_WAITING_STEP, {"id": execution_id, "now": now})
            events.record_event(tx, row, "cancelled", now, actor=actor, who=None,
                                before={"status": row["previous_status"]}, after={"status": "cancelled"})
        return row

    @staticmethod
    def _refuse(tx: Tx, execution_id: int, expected: str) -> None:
        current = tx.one("SELECT status FROM playbook_executions WHERE execution_id = %(id)s",
                         {"id": execution_id})
        if current is None:
            raise NotFound(f"no execution with id {execution_id}")
        raise FailedPrecondition(f"execution {execution_id} is {current['status']}, not {expected}")

    # --- reading -----------------------------------------------------------------------

    def get(self, execution_id: int) -> tuple[Row, list[Row], list[Row]]:
        """(execution, its step results, its events)."""
        row = self.db.one(f"SELECT {EXECUTION_COLUMNS} FROM playbook_executions WHERE execution_id = %(id)s",
                          {"id": execution_id})
        if row is None:
            raise NotFound(f"no execution with id {execution_id}")
        steps = self.db.all(f"SELECT {STEP_COLUMNS} FROM playbook_step_results WHERE execution_id = %(id)s "
                            "ORDER BY step_index", {"id": execution_id})
        found = self.db.all("SELECT kind, actor, step_index, detail, occurred_at FROM playbook_execution_events "
                            "WHERE execution_id = %(id)s ORDER BY event_id", {"id": execution_id})
        return row, steps, found

    def list(self, *, playbook_id: int | None, service_id: int | None, status: str | None,
             limit: int, offset: int) -> tuple[list[Row], bool]:
        rows = self.db.all(f"""
            SELECT {EXECUTION_COLUMNS} FROM playbook_executions
            WHERE (%(playbook)s::bigint IS NULL OR playbook_id = %(playbook)s)
              AND (%(service)s::bigint IS NULL OR service_id = %(service)s)
              AND (%(status)s::text IS NULL OR status = %(status)s)
            ORDER BY execution_id DESC LIMIT %(limit)s OFFSET %(offset)s""",
                           {"playbook": playbook_id, "service": service_id, "status": status,
                            "limit": limit + 1, "offset": offset})
        return rows[:limit], len(rows) > limit

    def pending_approvals(self) -> int:
        return self.db.one("SELECT count(*) AS n FROM playbook_executions WHERE status = 'pending_approval'")["n"]
