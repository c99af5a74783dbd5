"""The engine: worker threads that move executions along, one committed state
at a time.

A worker claims a due execution (``ExecutionStore.claim``, leased) and works on
it until it has to wait: it starts the current step (committed as running),
runs it, commits its outcome together with the move to the next step, and goes
on; a wait or condition step commits when the execution is next due and lets
go. So after a crash or a restart any worker resumes an execution at its
current step: a step whose outcome was committed is never run again; a step
that was running when the process died is started again (attempts counts
the starts) once its lease ends.

An execution waiting for approval is due once to post the approval request
(Slack, when configured) and again at its deadline (``timeout:Xm``), when it is
approved by itself. Times come from ``clock`` (tests move it).
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from medic.db import Row
from medic.errors import MedicError
from medic.workers import Workers
from services.remediation import metrics
from services.remediation.execution_store import TIMEOUT, ExecutionStore
from services.remediation.steps import Outcome, Request, WebhookSender, heartbeat_received
from services.remediation.variables import redact, secret_names, substitute

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30.0
# The execution events that decide an approval request (each its outcome's name).
DECISIONS = ("approved", "rejected", "cancelled")
CLAIM_LEASE_SECONDS = 30.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(eq=False)
class Engine:
    store: ExecutionStore
    sender: WebhookSender
    _: KW_ONLY
    last_heartbeat: Callable[[int], dt.datetime | None]
    secret: Callable[[str], str | None] = lambda name: None
    run_script: Callable[[dict, dict, float], Outcome] | None = None
    post_approval: Callable[[Row], tuple[str, str] | None] | None = None
    announce_decision: Callable[[Row, str, str], None] | None = None
    clock: Callable[[], dt.datetime] = utc_now
    workers: int = 8
    poll_seconds: float = 0.2
    condition_poll_seconds: float = 1.0

    def __post_init__(self):
        # Announcing a decision (Slack) never delays the decision nor a worker.
        self._announcer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="remediation-announce")
        self._workers = Workers("remediation", self.workers, lambda n: self.run_once(), lambda n: self.poll_seconds)

    # --- one pass ----------------------------------------------------------------------

    def run_once(self) -> int:
        """Claims one due execution and advances it as far as it goes now; returns
        how many were claimed (0 or 1)."""
        claimed = self.store.claim(1, CLAIM_LEASE_SECONDS, self.clock())
        for execution in claimed:
            try:
                self.advance(execution)
            except MedicError as exc:  # the database went away: the lease brings it back
                log.warning("execution %s: %s", execution["execution_id"], exc.message)
        return len(claimed)

    def run_until_idle(self, limit: int = 1000) -> int:
        """Advances due executions until none is due (tests)."""
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done

    def advance(self, execution: Row) -> None:
        if execution["status"] == "pending_approval":
            self._pending_approval(execution)
            return
        steps = execution["definition"]["steps"]
        # The current step as committed (begun before a crash, or waiting), as the
        # claim read it; a step this worker moves on to was never begun.
        result = (None if execution["step_status"] is None
                  else {"status": execution["step_status"], "started_at": execution["step_started_at"]})
        while execution is not None and execution["status"] in ("running", "waiting"):
            if execution["current_step"] >= len(steps):
                self.store.fail(execution, "no step left to run", self.clock())
                return
            execution = self._advance_step(execution, steps[execution["current_step"]], result)
            result = None

    def _pending_approval(self, execution: Row) -> None:
        now = self.clock()
        deadline = execution["approval_deadline"]
        if deadline is not None and now >= deadline:
            try:
                # Due at once: a worker claims it (and leases it) like any other.
                approved = self.store.approve(execution["execution_id"], TIMEOUT, now)
            except MedicError:  # decided meanwhile
                return
            self.decided(approved, "approved", TIMEOUT)
            metrics.PENDING_APPROVAL.set(self.store.pending_approvals())
            return
        message = None
        if execution["approval_posted_at"] is None and self.post_approval is not None:
            message = self.post_approval(execution)  # raises to retry after the lease
        if not self.store.approval_posted(execution, now, message) and message is not None:
            self._decided_while_posting(execution["execution_id"], message)
        metrics.PENDING_APPROVAL.set(self.store.pending_approvals())

    def _decided_while_posting(self, execution_id: int, message: tuple[str, str]) -> None:
        """Decided between the post and its record: that decision found no
        message to update, so the request just posted shows it now."""
        row, _, found = self.store.get(execution_id)
        decisions = [e for e in found if e["kind"] in DECISIONS]
        if decisions:
            self.decided({**row, "approval_message_channel": message[0], "approval_message_ts": message[1]},
                         decisions[-1]["kind"], decisions[-1]["actor"])

    def _advance_step(self, execution: Row, step: dict, result: Row | None) -> Row | None:
        """Does what the current step needs now (``result``: its committed
        state, if it was begun); returns the execution to go on with, or None
        when it waits (or ended)."""
        now = self.clock()
        kind = step["type"]
        if kind in ("wait", "condition"):
            if result is None or result["status"] != "running":
                # A wait is due at its end; a condition is checked now, by this worker, under its lease.
                until = now + dt.timedelta(seconds=step["duration_seconds"] if kind == "wait" else CLAIM_LEASE_SECONDS)
                if not self.store.begin_step(execution, step, now, status="waiting", due_at=until):
                    return None
                if kind == "wait" and until > now:
                    return None  # begun as due at its end: nothing more to do now
                started = now
            else:
                started = result["started_at"]
            return self._wait_or_check(execution, step, started)
        # webhook, script: run now, under a lease longer than the step may take.
        lease = now + dt.timedelta(seconds=step.get("timeout_seconds", 30) + LEASE_MARGIN_SECONDS)
        if not self.store.begin_step(execution, step, now, status="running", due_at=lease):
            return None
        started = time.perf_counter()
        outcome = self._run(execution, step)
        metrics.STEP_SECONDS.labels(kind).observe(time.perf_counter() - started)
        return self._finish(execution, step, outcome, fail_execution=not outcome.ok)

    def _wait_or_check(self, execution: Row, step: dict, started: dt.datetime) -> Row | None:
        now = self.clock()
        if step["type"] == "wait":
            until = started + dt.timedelta(seconds=step["duration_seconds"])
            if now < until:
                self.store.reschedule(execution, until, now)
                return None
            return self._finish(execution, step, Outcome(True, f"waited {step['duration_seconds']} s"),
                                fail_execution=False)
        service_id = execution["service_id"] or step.get("parameters", {}).get("service_id")
        if not service_id:
            return self._finish(execution, step, Outcome(False, error="no service to check: the execution is "
                                                         "about no service and the step names none"),
                                fail_execution=True)
        try:
            last = self.last_heartbeat(int(service_id))
        except MedicError as exc:  # heartbeat unreachable: check again later
            log.warning("condition of execution %s: %s", execution["execution_id"], exc.message)
            last, unreachable = None, True
        else:
            unreachable = False
        if heartbeat_received(last, started):
            return self._finish(execution, step, Outcome(
                True, f"heartbeat received at {last.isoformat()} (after {(last - started).total_seconds():.1f} s)"),
                fail_execution=False)
        deadline = started + dt.timedelta(seconds=step["timeout_seconds"])
        if now < deadline:
            self.store.reschedule(execution, min(now + dt.timedelta(seconds=self.condition_poll_seconds), deadline),
                                  now)
            return None
        waited = f"no heartbeat within {step['timeout_seconds']} s" + (
            " (the heartbeat service did not answer)" if unreachable else "")
        on_failure = step.get("on_failure", "fail")
        if on_failure == "continue":
            return self._finish(execution, step, Outcome(True, f"{waited}; continuing (on_failure: continue)"),
                                fail_execution=False)
        if on_failure == "escalate":
            return self._finish(execution, step, Outcome(False, "[ESCALATE] condition failure requires escalation",
                                                         f"{waited}; escalating to on-call"), fail_execution=True)
        return self._finish(execution, step, Outcome(False, error=waited), fail_execution=True)

    def _finish(self, execution: Row, step: dict, outcome: Outcome, *, fail_execution: bool) -> Row | None:
        now = self.clock()
        status = self.store.finish_step(execution, step, now, ok=outcome.ok, output=outcome.output,
                                        error=outcome.error, fail_execution=fail_execution,
                                        keep_until=now + dt.timedelta(seconds=CLAIM_LEASE_SECONDS))
        metrics.STEPS.labels(step["type"], "completed" if outcome.ok else "failed").inc()
        if status in ("completed", "failed"):
            metrics.EXECUTIONS.labels(status).inc()
        if status != "running":
            return None
        return {**execution, "status": "running", "current_step": execution["current_step"] + 1}

    # --- running a step ----------------------------------------------------------------

    def _variables(self, execution: Row) -> dict[str, Any]:
        return {**execution["variables"], "EXECUTION_ID": execution["execution_id"],
                "PLAYBOOK_ID": execution["playbook_id"], "PLAYBOOK_NAME": execution["playbook_name"]}

    def _secrets(self, value: Any) -> tuple[dict[str, str], str | None]:
        """(name -> value of each secret ``value`` names, the error when one is missing)."""
        found = {}
        for name in sorted(secret_names(value)):
            secret = self.secret(name)
            if secret is None:
                return found, f"secret {name!r} does not exist"
            found[name] = secret
        return found, None

    def _run(self, execution: Row, step: dict) -> Outcome:
        variables = self._variables(execution)
        fields = {k: step.get(k) for k in ("url", "headers", "body", "parameters")}
        # One pass over the playbook's own text each: a value put in (an alert field)
        # is never scanned again, so it cannot name a secret.
        shown = substitute(fields, variables)
        secrets, missing = self._secrets(fields)
        if missing:
            return Outcome(False, error=missing)
        actual = substitute(fields, variables, secrets.get)
        values = list(secrets.values())
        try:
            if step["type"] == "webhook":
                request = Request(method=step["method"], url=actual["url"], headers=actual["headers"] or {},
                                  body=actual["body"], timeout=step["timeout_seconds"],
                                  idempotency_key=f"medic-execution-{execution['execution_id']}"
                                                  f"-step-{execution['current_step']}")
                return self.sender.send(request, shown["url"], step["success_codes"], values)
            if step["type"] == "script":
                if self.run_script is None:
                    return Outcome(False, error="scripts are not enabled (MEDIC_REMEDIATION_SCRIPTS_DIR is unset)")
                outcome = self.run_script(step, actual["parameters"] or {}, step["timeout_seconds"])
                return Outcome(outcome.ok, redact(outcome.output, values), redact(outcome.error, values))
        except Exception as exc:  # a step's failure, never the worker's
            log.exception("step %r of execution %s failed unexpectedly", step["name"], execution["execution_id"])
            return Outcome(False, error=redact(f"unexpected error: {type(exc).__name__}", values))
        return Outcome(False, error=f"unknown step type {step['type']!r}")

    def decided(self, execution: Row, outcome: str, by: str) -> None:
        """A decision (approved, rejected, cancelled while waiting for approval)
        was committed: show it where the request was posted, in the background."""
        if self.announce_decision is not None and execution.get("approval_message_ts"):
            self._announcer.submit(self._announce, execution, outcome, by)

    def _announce(self, execution: Row, outcome: str, by: str) -> None:
        try:
            self.announce_decision(execution, outcome, by)
        except MedicError as exc:
            log.warning("execution %s: the approval request was not updated: %s", execution["execution_id"],
                        exc.message)

    # --- threads -----------------------------------------------------------------------

    def wake(self) -> None:
        """An execution became due (started, approved): work on it now."""
        self._workers.wake()

    def start(self) -> None:
        self._workers.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._workers.stop(timeout)
        self._announcer.shutdown(wait=False, cancel_futures=True)
