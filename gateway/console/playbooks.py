"""Remediation in the console: playbooks with their YAML (apply one from a
form, run one by hand) and executions step by step, live, with approve, reject
and cancel. Every rule is the remediation service's: a document it refuses
comes back with its problems by line and field, as ``/v2/playbooks/validate``
lists them."""
from __future__ import annotations

from starlette.datastructures import FormData
from starlette.responses import Response

from medic import enums
from gateway.console import forms
from gateway.console.backend import ConsoleError, parts
from gateway.console.pages import _local
from gateway.console.web import Console, View, query, with_query

REM = "RemediationService/"
HB = "HeartbeatService/"
EXECUTIONS_PAGE = 50
EXECUTION_STATUSES = enums.EXECUTION_STATUS.numbers
# An execution that has not ended can be cancelled; one waiting for approval, decided.
OPEN_STATUSES = ("pending_approval", "running", "waiting")
DECISIONS = {"approve": ("ApproveExecution", "approved"), "reject": ("RejectExecution", "rejected"),
             "cancel": ("CancelExecution", "cancelled")}
EXAMPLE = """name: restart-worker
description: Restart a worker that stopped sending heartbeats
approval: required
trigger:
  service_pattern: "worker-*"
  consecutive_failures: 2
steps:
  - name: restart
    type: webhook
    url: https://ops.example.com/restart/${SERVICE_NAME}
  - name: settle
    type: wait
    duration: 30s
  - name: verify
    type: condition
    check: heartbeat_received
    timeout: 5m
"""


def problem_text(problem) -> str:
    """A document problem as the API words it: ``line 7, steps[0].url: `url` is required``."""
    where = f"line {problem.line}" if problem.line else "document"
    return f"{where}, {problem.field}: {problem.message}" if problem.field else f"{where}: {problem.message}"


class RemediationPages:
    def __init__(self, console: Console):
        self.c = console

    # --- playbooks ---------------------------------------------------------------------

    async def playbooks(self, view: View, document: forms.Form | None = None, problems: list[str] | None = None,
                        status: int = 200) -> Response:
        p = await parts(playbooks=view.backend.call(REM + "ListPlaybooks", "playbooks"))
        if document is None:
            document = forms.Form(values={"yaml": EXAMPLE})
            edit = forms.integer(query(view.request, "edit"), 0)
            if edit and p["playbooks"].ok:
                for playbook in p["playbooks"].value.playbooks:
                    if playbook.playbook_id == edit:
                        document.values["yaml"] = playbook.yaml
        return self.c.render("playbooks.html", status, view=view, p=p, document=document, problems=problems or [],
                             page="playbooks")

    async def apply(self, view: View, form: FormData) -> Response:
        """ApplyPlaybook; a refused document stays in the form with each problem listed."""
        document = forms.typed(form, ("yaml",))
        try:
            response = await view.backend.call(REM + "ApplyPlaybook", "apply", yaml=document.values["yaml"])
        except ConsoleError as err:
            if err.status != 400:
                raise
            checked = await view.backend.call(REM + "ValidatePlaybook", "apply", yaml=document.values["yaml"])
            problems = [problem_text(e) for e in checked.errors] or [err.message]
            return await self.playbooks(view, document, problems, status=400)
        word = "created" if response.created else "updated"
        return self.c.redirect(f"/ui/playbooks#playbook-{response.playbook_id}", view,
                               flash=f"Playbook {response.playbook.name} {word}.")

    async def execute(self, view: View, form: FormData) -> Response:
        playbook_id = view.request.path_params["playbook_id"]
        service = str(form.get("service", "")).strip()
        response, refused = await self.c.attempt(view, f"/ui/playbooks#playbook-{playbook_id}",
                                                 self._execute(view, playbook_id, service), (400, 404, 429))
        if refused:
            return refused
        text = f"Execution #{response.execution_id} of {response.playbook_name} started."
        if response.message:
            text += f" {response.message}"
        return self.c.redirect(f"/ui/executions/{response.execution_id}", view, flash=text)

    async def _execute(self, view: View, playbook_id: int, service: str):
        """ExecutePlaybook about ``service`` (a heartbeat name or id; empty: none)."""
        fields: dict = {"playbook_id": playbook_id}
        if service.isdigit():
            fields["service_id"] = int(service)
        elif service:
            found = await view.backend.call(HB + "GetService", "execute", heartbeat_name=service)
            fields["service_id"] = found.service.service_id
        return await view.backend.call(REM + "ExecutePlaybook", "execute", **fields)

    # --- executions --------------------------------------------------------------------

    def _execution_filters(self, view: View) -> dict[str, str]:
        r = view.request
        return {"playbook_id": query(r, "playbook_id"), "service_id": query(r, "service_id"),
                "status": query(r, "status"), "page": query(r, "page", "1")}

    async def _executions(self, view: View, f: dict[str, str]):
        request: dict = {"status": EXECUTION_STATUSES.get(f["status"], 0), "limit": EXECUTIONS_PAGE}
        for name in ("playbook_id", "service_id"):
            value = forms.integer(f[name], 0)
            if value is None or value < 0:
                raise ConsoleError(400, f"{name} must be a whole number")
            if value:
                request[name] = value
        page = forms.integer(f["page"], 1)
        request["offset"] = (max(1, page or 1) - 1) * EXECUTIONS_PAGE
        return await view.backend.call(REM + "ListExecutions", "executions", **request)

    async def executions(self, view: View, live: bool = False) -> Response:
        f = self._execution_filters(view)
        p = await parts(executions=self._executions(view, f))
        page_no = max(1, forms.integer(f["page"], 1) or 1)

        def link(**changes) -> str:
            return with_query("/ui/executions", **{**f, **changes})

        return self.c.render("executions_live.html" if live else "executions.html", view=view, p=p, f=f,
                             page_no=page_no, link=link, live_url=with_query("/ui/executions/live", **f),
                             statuses=list(EXECUTION_STATUSES), page="executions")

    async def executions_live(self, view: View) -> Response:
        return await self.executions(view, live=True)

    async def execution(self, view: View, live: bool = False) -> Response:
        execution_id = view.request.path_params["execution_id"]
        p = await parts(execution=view.backend.call(REM + "GetExecution", "execution", execution_id=execution_id))
        if not p["execution"].ok and p["execution"].error.status == 404:
            return self.c.render("not_found.html", 404, view=view, what=f"Execution {execution_id}")
        return self.c.render("execution_live.html" if live else "execution.html", view=view, p=p,
                             execution_id=execution_id, open_statuses=OPEN_STATUSES, page="executions")

    async def execution_live(self, view: View) -> Response:
        return await self.execution(view, live=True)

    async def decide(self, view: View, form: FormData) -> Response:
        """Approve, reject or cancel, as the path says."""
        execution_id = view.request.path_params["execution_id"]
        decision = DECISIONS.get(view.request.path_params["decision"])
        if decision is None:
            raise ConsoleError(404, "No such action on an execution (approve, reject or cancel).")
        rpc, word = decision
        back = _local(form.get("back"), f"/ui/executions/{execution_id}")
        _, refused = await self.c.attempt(view, back, view.backend.call(REM + rpc, "decide", execution_id=execution_id))
        if refused:
            return refused
        return self.c.redirect(back, view, flash=f"Execution #{execution_id} {word}.")
