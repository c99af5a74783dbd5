"""RemediationService: converts protobuf <-> domain values and validates requests.

Errors are raised as ``medic.errors`` types; the shared interceptor maps them
to status codes.
"""
from __future__ import annotations

from google.protobuf import json_format

from medic import audit, enums
from medic.db import Row
from medic.errors import InvalidArgument, MedicError
from medic.interceptors import current_identity
from medic.timestamps import to_timestamp
from medic.v1 import remediation_pb2, remediation_pb2_grpc
from services.remediation import playbook as documents
from services.remediation.engine import Engine
from services.remediation.execution_store import ExecutionStore
from services.remediation.playbook_store import PlaybookStore
from services.remediation.remediation import BUILT_IN, Remediation
from services.remediation.secrets import SecretStore

MAX_EVENT_BATCH = 256
DEFAULT_LIMIT = 100
APPROVAL = enums.APPROVAL_MODE.numbers
EXECUTION_STATUS = enums.EXECUTION_STATUS
STEP_STATUS = enums.STEP_STATUS
PENDING_MESSAGE = "Playbook requires approval before execution. Approve via Slack or API."


def playbook_to_pb(row: Row) -> remediation_pb2.Playbook:
    return remediation_pb2.Playbook(
        playbook_id=row["playbook_id"], name=row["name"], description=row["description"], yaml=row["yaml"],
        approval=APPROVAL[row["approval"]], approval_timeout_minutes=row["approval_timeout_minutes"] or 0,
        version=row["version"], service_pattern=row["service_pattern"] or "",
        consecutive_failures=row["consecutive_failures"], step_count=len(row["definition"]["steps"]),
        created_at=to_timestamp(row["created_at"]), updated_at=to_timestamp(row["updated_at"]))


def execution_to_pb(row: Row, steps: list[Row] = (), found: list[Row] = ()) -> remediation_pb2.Execution:
    message = remediation_pb2.Execution(
        execution_id=row["execution_id"], playbook_id=row["playbook_id"] or 0,
        playbook_name=row["playbook_name"], alert_id=row["alert_id"] or 0,
        status=EXECUTION_STATUS.numbers[row["status"]], trigger=row["trigger"],
        current_step=row["current_step"], approval=APPROVAL[row["approval"]],
        approval_deadline=to_timestamp(row["approval_deadline"]), decided_by=row["decided_by"] or "",
        decided_at=to_timestamp(row["decided_at"]), created_at=to_timestamp(row["created_at"]),
        started_at=to_timestamp(row["started_at"]), completed_at=to_timestamp(row["completed_at"]),
        error=row["error"] or "")
    if row["service_id"] is not None:
        message.service_id = row["service_id"]
    definition = row["definition"]["steps"]
    by_index = {s["step_index"]: s for s in steps}
    if steps or found:
        for index, step in enumerate(definition):
            result = by_index.get(index)
            item = remediation_pb2.StepResult(step_index=index, name=step["name"], type=step["type"],
                                              status=STEP_STATUS.numbers["pending"])
            if result is not None:
                item.status = STEP_STATUS.numbers[result["status"]]
                item.output, item.error = result["output"], result["error"]
                if result["started_at"]:
                    item.started_at.CopyFrom(to_timestamp(result["started_at"]))
                if result["completed_at"]:
                    item.completed_at.CopyFrom(to_timestamp(result["completed_at"]))
            message.steps.append(item)
    for event in found:
        item = remediation_pb2.ExecutionEvent(kind=event["kind"], occurred_at=to_timestamp(event["occurred_at"]),
                                              actor=event["actor"], detail=event["detail"])
        if event["step_index"] is not None:
            item.step_index = event["step_index"]
        message.events.append(item)
    return message


def _parse(document: str) -> documents.Playbook:
    try:
        return documents.parse(document)
    except documents.PlaybookInvalid as exc:
        raise InvalidArgument(f"invalid playbook: {exc}") from None


def _variables(request) -> dict:
    if not request.HasField("variables"):
        return {}
    values = json_format.MessageToDict(request.variables)
    out = {}
    for name, value in values.items():
        if isinstance(value, (dict, list)) or value is None:
            raise InvalidArgument(f"variables.{name} must be a string, number or boolean")
        if name in BUILT_IN:
            raise InvalidArgument(f"variables.{name} is set by Medic and cannot be given")
        out[name] = int(value) if isinstance(value, float) and value.is_integer() else value
    return out


def _actor() -> str:
    return current_identity().principal


def _decider() -> str:
    """Who decided, for people: a Slack user as such, else the caller's X-Actor or key name."""
    principal = current_identity().principal
    return principal if principal.startswith("slack:") else audit.current_who().label


class RemediationServicer(remediation_pb2_grpc.RemediationServiceServicer):
    def __init__(self, playbooks: PlaybookStore, executions: ExecutionStore, remediation: Remediation,
                 engine: Engine, secrets: SecretStore):
        self.playbooks = playbooks
        self.executions = executions
        self.remediation = remediation
        self.engine = engine
        self.secrets = secrets

    # --- playbooks ---------------------------------------------------------------------
    def CreatePlaybook(self, request, context):
        row = self.playbooks.create(_parse(request.yaml), request.yaml)
        return remediation_pb2.CreatePlaybookResponse(playbook_id=row["playbook_id"], playbook=playbook_to_pb(row))

    def UpdatePlaybook(self, request, context):
        row = self.playbooks.update(request.playbook_id, _parse(request.yaml), request.yaml)
        return remediation_pb2.UpdatePlaybookResponse(playbook=playbook_to_pb(row))

    def ApplyPlaybook(self, request, context):
        row, created = self.playbooks.apply(_parse(request.yaml), request.yaml)
        return remediation_pb2.ApplyPlaybookResponse(playbook_id=row["playbook_id"], playbook=playbook_to_pb(row),
                                                     created=created)

    def ValidatePlaybook(self, request, context):
        problems = documents.validate(request.yaml)
        return remediation_pb2.ValidatePlaybookResponse(
            valid=not problems,
            errors=[remediation_pb2.PlaybookError(line=p.line, field=p.field, message=p.message) for p in problems])

    def GetPlaybook(self, request, context):
        return remediation_pb2.GetPlaybookResponse(playbook=playbook_to_pb(self.playbooks.get(request.playbook_id)))

    def ListPlaybooks(self, request, context):
        return remediation_pb2.ListPlaybooksResponse(playbooks=[playbook_to_pb(r) for r in self.playbooks.all()])

    def DeletePlaybook(self, request, context):
        self.playbooks.delete(request.playbook_id)
        return remediation_pb2.DeletePlaybookResponse()

    # --- executions --------------------------------------------------------------------
    def _started(self, request, trigger: str, extra: dict | None = None):
        service_id = request.service_id if request.HasField("service_id") else None
        execution, playbook = self.remediation.execute(request.playbook_id, service_id,
                                                       {**_variables(request), **(extra or {})},
                                                       trigger=trigger, actor=_actor())
        response = remediation_pb2.ExecutePlaybookResponse(
            execution_id=execution["execution_id"], playbook_id=playbook["playbook_id"],
            playbook_name=playbook["name"], status=EXECUTION_STATUS.numbers[execution["status"]])
        if service_id is not None:
            response.service_id = service_id
        if execution["status"] == "pending_approval":
            response.message = PENDING_MESSAGE
        return response

    def ExecutePlaybook(self, request, context):
        return self._started(request, "api")

    def TriggerPlaybook(self, request, context):
        return self._started(request, "webhook", {"SOURCE_IP": request.source_ip} if request.source_ip else None)

    def GetExecution(self, request, context):
        return remediation_pb2.GetExecutionResponse(execution=execution_to_pb(*self.executions.get(request.execution_id)))

    def ListExecutions(self, request, context):
        status = None
        if request.status:
            if request.status not in EXECUTION_STATUS.names:
                raise InvalidArgument("status is not a known execution status")
            status = EXECUTION_STATUS.names[request.status]
        rows, more = self.executions.list(
            playbook_id=request.playbook_id if request.HasField("playbook_id") else None,
            service_id=request.service_id if request.HasField("service_id") else None,
            status=status, limit=request.limit or DEFAULT_LIMIT, offset=request.offset)
        return remediation_pb2.ListExecutionsResponse(executions=[execution_to_pb(r) for r in rows], has_more=more)

    def _full(self, execution_id: int) -> remediation_pb2.Execution:
        return execution_to_pb(*self.executions.get(execution_id))

    def ApproveExecution(self, request, context):
        row = self.executions.approve(request.execution_id, _actor(), self.engine.clock())
        self.engine.wake()
        self.engine.decided(row, "approved", _decider())
        return remediation_pb2.ApproveExecutionResponse(execution=self._full(request.execution_id))

    def RejectExecution(self, request, context):
        row = self.executions.reject(request.execution_id, _actor(), self.engine.clock())
        self.engine.decided(row, "rejected", _decider())
        return remediation_pb2.RejectExecutionResponse(execution=self._full(request.execution_id))

    def CancelExecution(self, request, context):
        row = self.executions.cancel(request.execution_id, _actor(), self.engine.clock())
        if row["previous_status"] == "pending_approval":
            self.engine.decided(row, "cancelled", _decider())
        return remediation_pb2.CancelExecutionResponse(execution=self._full(request.execution_id))

    # --- the hand-off --------------------------------------------------------------------
    def HandleAlertEvents(self, request, context):
        count = len(request.events)
        if not 1 <= count <= MAX_EVENT_BATCH:
            raise InvalidArgument(f"a batch holds 1 to {MAX_EVENT_BATCH} events, not {count}")
        for event in request.events:
            if not event.event_id.strip() or event.alert_id < 1 or event.service.service_id < 1:
                raise InvalidArgument("every event needs event_id, alert_id and service.service_id")
            if event.kind not in enums.ALERT_EVENT_KIND.names:
                raise InvalidArgument("event.kind must be TRIGGER, REMINDER or RESOLVE")
        results = []
        for outcome in self.remediation.handle_alert_events(list(request.events)):
            if isinstance(outcome, MedicError):
                results.append(remediation_pb2.HandleAlertEventResult(code=outcome.code.value[0],
                                                                       message=outcome.message))
            else:
                results.append(remediation_pb2.HandleAlertEventResult(execution_ids=outcome))
        return remediation_pb2.HandleAlertEventsResponse(results=results)

    # --- secrets -------------------------------------------------------------------------
    def PutSecret(self, request, context):
        row = self.secrets.put(request.name, request.value)
        return remediation_pb2.PutSecretResponse(secret=_secret_to_pb(row))

    def ListSecrets(self, request, context):
        return remediation_pb2.ListSecretsResponse(secrets=[_secret_to_pb(r) for r in self.secrets.list()])

    def DeleteSecret(self, request, context):
        self.secrets.delete(request.name)
        return remediation_pb2.DeleteSecretResponse()


def _secret_to_pb(row: Row) -> remediation_pb2.Secret:
    return remediation_pb2.Secret(name=row["name"], created_at=to_timestamp(row["created_at"]),
                                  updated_at=to_timestamp(row["updated_at"]))
