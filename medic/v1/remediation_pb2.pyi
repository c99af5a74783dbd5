import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from medic.v1 import events_pb2 as _events_pb2
from medic.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApprovalMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_MODE_UNSPECIFIED: _ClassVar[ApprovalMode]
    APPROVAL_MODE_NONE: _ClassVar[ApprovalMode]
    APPROVAL_MODE_REQUIRED: _ClassVar[ApprovalMode]
    APPROVAL_MODE_TIMEOUT: _ClassVar[ApprovalMode]

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_PENDING_APPROVAL: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_WAITING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_COMPLETED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_REJECTED: _ClassVar[ExecutionStatus]

class StepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATUS_UNSPECIFIED: _ClassVar[StepStatus]
    STEP_STATUS_PENDING: _ClassVar[StepStatus]
    STEP_STATUS_RUNNING: _ClassVar[StepStatus]
    STEP_STATUS_COMPLETED: _ClassVar[StepStatus]
    STEP_STATUS_FAILED: _ClassVar[StepStatus]
    STEP_STATUS_SKIPPED: _ClassVar[StepStatus]
    STEP_STATUS_CANCELLED: _ClassVar[StepStatus]
APPROVAL_MODE_UNSPECIFIED: ApprovalMode
APPROVAL_MODE_NONE: ApprovalMode
APPROVAL_MODE_REQUIRED: ApprovalMode
APPROVAL_MODE_TIMEOUT: ApprovalMode
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_PENDING_APPROVAL: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_WAITING: ExecutionStatus
EXECUTION_STATUS_COMPLETED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_CANCELLED: ExecutionStatus
EXECUTION_STATUS_REJECTED: ExecutionStatus
STEP_STATUS_UNSPECIFIED: StepStatus
STEP_STATUS_PENDING: StepStatus
STEP_STATUS_RUNNING: StepStatus
STEP_STATUS_COMPLETED: StepStatus
STEP_STATUS_FAILED: StepStatus
STEP_STATUS_SKIPPED: StepStatus
STEP_STATUS_CANCELLED: StepStatus

class Playbook(_message.Message):
    __slots__ = ("playbook_id", "name", "description", "yaml", "approval", "approval_timeout_minutes", "version", "service_pattern", "consecutive_failures", "step_count", "created_at", "updated_at")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_TIMEOUT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_PATTERN_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    STEP_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    name: str
    description: str
    yaml: str
    approval: ApprovalMode
    approval_timeout_minutes: int
    version: int
    service_pattern: str
    consecutive_failures: int
    step_count: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, playbook_id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., yaml: _Optional[str] = ..., approval: _Optional[_Union[ApprovalMode, str]] = ..., approval_timeout_minutes: _Optional[int] = ..., version: _Optional[int] = ..., service_pattern: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., step_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PlaybookError(_message.Message):
    __slots__ = ("line", "field", "message")
    LINE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    line: int
    field: str
    message: str
    def __init__(self, line: _Optional[int] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CreatePlaybookRequest(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class CreatePlaybookResponse(_message.Message):
    __slots__ = ("playbook_id", "playbook")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOK_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    playbook: Playbook
    def __init__(self, playbook_id: _Optional[int] = ..., playbook: _Optional[_Union[Playbook, _Mapping]] = ...) -> None: ...

class UpdatePlaybookRequest(_message.Message):
    __slots__ = ("playbook_id", "yaml")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    yaml: str
    def __init__(self, playbook_id: _Optional[int] = ..., yaml: _Optional[str] = ...) -> None: ...

class UpdatePlaybookResponse(_message.Message):
    __slots__ = ("playbook",)
    PLAYBOOK_FIELD_NUMBER: _ClassVar[int]
    playbook: Playbook
    def __init__(self, playbook: _Optional[_Union[Playbook, _Mapping]] = ...) -> None: ...

class ApplyPlaybookRequest(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class ApplyPlaybookResponse(_message.Message):
    __slots__ = ("playbook_id", "playbook", "created")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOK_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    playbook: Playbook
    created: bool
    def __init__(self, playbook_id: _Optional[int] = ..., playbook: _Optional[_Union[Playbook, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ValidatePlaybookRequest(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class ValidatePlaybookResponse(_message.Message):
    __slots__ = ("valid", "errors")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedCompositeFieldContainer[PlaybookError]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[PlaybookError, _Mapping]]] = ...) -> None: ...

class GetPlaybookRequest(_message.Message):
    __slots__ = ("playbook_id",)
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    def __init__(self, playbook_id: _Optional[int] = ...) -> None: ...

class GetPlaybookResponse(_message.Message):
    __slots__ = ("playbook",)
    PLAYBOOK_FIELD_NUMBER: _ClassVar[int]
    playbook: Playbook
    def __init__(self, playbook: _Optional[_Union[Playbook, _Mapping]] = ...) -> None: ...

class ListPlaybooksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPlaybooksResponse(_message.Message):
    __slots__ = ("playbooks",)
    PLAYBOOKS_FIELD_NUMBER: _ClassVar[int]
    playbooks: _containers.RepeatedCompositeFieldContainer[Playbook]
    def __init__(self, playbooks: _Optional[_Iterable[_Union[Playbook, _Mapping]]] = ...) -> None: ...

class DeletePlaybookRequest(_message.Message):
    __slots__ = ("playbook_id",)
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    def __init__(self, playbook_id: _Optional[int] = ...) -> None: ...

class DeletePlaybookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExecutePlaybookRequest(_message.Message):
    __slots__ = ("playbook_id", "service_id", "variables")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    service_id: int
    variables: _struct_pb2.Struct
    def __init__(self, playbook_id: _Optional[int] = ..., service_id: _Optional[int] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TriggerPlaybookRequest(_message.Message):
    __slots__ = ("playbook_id", "service_id", "variables", "source_ip")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IP_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    service_id: int
    variables: _struct_pb2.Struct
    source_ip: str
    def __init__(self, playbook_id: _Optional[int] = ..., service_id: _Optional[int] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source_ip: _Optional[str] = ...) -> None: ...

class ExecutePlaybookResponse(_message.Message):
    __slots__ = ("execution_id", "playbook_id", "playbook_name", "status", "service_id", "message")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOK_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    playbook_id: int
    playbook_name: str
    status: ExecutionStatus
    service_id: int
    message: str
    def __init__(self, execution_id: _Optional[int] = ..., playbook_id: _Optional[int] = ..., playbook_name: _Optional[str] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., service_id: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("step_index", "name", "type", "status", "started_at", "completed_at", "output", "error")
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    step_index: int
    name: str
    type: str
    status: StepStatus
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    output: str
    error: str
    def __init__(self, step_index: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[_Union[StepStatus, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., output: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ExecutionEvent(_message.Message):
    __slots__ = ("kind", "occurred_at", "actor", "step_index", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    step_index: int
    detail: str
    def __init__(self, kind: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., step_index: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("execution_id", "playbook_id", "playbook_name", "service_id", "alert_id", "status", "trigger", "current_step", "approval", "approval_deadline", "decided_by", "decided_at", "steps", "events", "created_at", "started_at", "completed_at", "error")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYBOOK_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    playbook_id: int
    playbook_name: str
    service_id: int
    alert_id: int
    status: ExecutionStatus
    trigger: str
    current_step: int
    approval: ApprovalMode
    approval_deadline: _timestamp_pb2.Timestamp
    decided_by: str
    decided_at: _timestamp_pb2.Timestamp
    steps: _containers.RepeatedCompositeFieldContainer[StepResult]
    events: _containers.RepeatedCompositeFieldContainer[ExecutionEvent]
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    error: str
    def __init__(self, execution_id: _Optional[int] = ..., playbook_id: _Optional[int] = ..., playbook_name: _Optional[str] = ..., service_id: _Optional[int] = ..., alert_id: _Optional[int] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., trigger: _Optional[str] = ..., current_step: _Optional[int] = ..., approval: _Optional[_Union[ApprovalMode, str]] = ..., approval_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[StepResult, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[ExecutionEvent, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class GetExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class GetExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ("playbook_id", "service_id", "status", "limit", "offset")
    PLAYBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    playbook_id: int
    service_id: int
    status: ExecutionStatus
    limit: int
    offset: int
    def __init__(self, playbook_id: _Optional[int] = ..., service_id: _Optional[int] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ("executions", "has_more")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[Execution]
    has_more: bool
    def __init__(self, executions: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class ApproveExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class ApproveExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class RejectExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class RejectExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class CancelExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    def __init__(self, execution_id: _Optional[int] = ...) -> None: ...

class CancelExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: Execution
    def __init__(self, execution: _Optional[_Union[Execution, _Mapping]] = ...) -> None: ...

class HandleAlertEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_events_pb2.AlertEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_events_pb2.AlertEvent, _Mapping]]] = ...) -> None: ...

class HandleAlertEventResult(_message.Message):
    __slots__ = ("code", "message", "execution_ids")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    execution_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., execution_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class HandleAlertEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[HandleAlertEventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[HandleAlertEventResult, _Mapping]]] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("name", "created_at", "updated_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutSecretRequest(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class PutSecretResponse(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: Secret
    def __init__(self, secret: _Optional[_Union[Secret, _Mapping]] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("secrets",)
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    secrets: _containers.RepeatedCompositeFieldContainer[Secret]
    def __init__(self, secrets: _Optional[_Iterable[_Union[Secret, _Mapping]]] = ...) -> None: ...

class DeleteSecretRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSecretResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
