import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from medic.v1 import common_pb2 as _common_pb2
from medic.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServiceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_STATE_UNSPECIFIED: _ClassVar[ServiceState]
    SERVICE_STATE_NEW: _ClassVar[ServiceState]
    SERVICE_STATE_UP: _ClassVar[ServiceState]
    SERVICE_STATE_DOWN: _ClassVar[ServiceState]

class RecordOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_OUTCOME_UNSPECIFIED: _ClassVar[RecordOutcome]
    RECORD_OUTCOME_ACCEPTED: _ClassVar[RecordOutcome]
    RECORD_OUTCOME_UNKNOWN_SERVICE: _ClassVar[RecordOutcome]
    RECORD_OUTCOME_INACTIVE_SERVICE: _ClassVar[RecordOutcome]
    RECORD_OUTCOME_INVALID: _ClassVar[RecordOutcome]

class JobSignal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_SIGNAL_UNSPECIFIED: _ClassVar[JobSignal]
    JOB_SIGNAL_START: _ClassVar[JobSignal]
    JOB_SIGNAL_COMPLETE: _ClassVar[JobSignal]
    JOB_SIGNAL_FAIL: _ClassVar[JobSignal]

class AlertReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_REASON_UNSPECIFIED: _ClassVar[AlertReason]
    ALERT_REASON_MISSED_HEARTBEATS: _ClassVar[AlertReason]
    ALERT_REASON_REPORTED_FAILURE: _ClassVar[AlertReason]
    ALERT_REASON_RUN_TOO_LONG: _ClassVar[AlertReason]
    ALERT_REASON_RUN_TOO_FAST: _ClassVar[AlertReason]

class ServiceCondition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_CONDITION_UNSPECIFIED: _ClassVar[ServiceCondition]
    SERVICE_CONDITION_UP: _ClassVar[ServiceCondition]
    SERVICE_CONDITION_DOWN: _ClassVar[ServiceCondition]
    SERVICE_CONDITION_NEW: _ClassVar[ServiceCondition]
    SERVICE_CONDITION_MUTED: _ClassVar[ServiceCondition]
    SERVICE_CONDITION_INACTIVE: _ClassVar[ServiceCondition]

class ServiceSort(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_SORT_UNSPECIFIED: _ClassVar[ServiceSort]
    SERVICE_SORT_NAME: _ClassVar[ServiceSort]
    SERVICE_SORT_STATE: _ClassVar[ServiceSort]
    SERVICE_SORT_LAST_HEARTBEAT: _ClassVar[ServiceSort]
    SERVICE_SORT_DEADLINE: _ClassVar[ServiceSort]

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_COMPLETED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_TIMED_OUT: _ClassVar[RunStatus]
    RUN_STATUS_ABANDONED: _ClassVar[RunStatus]

class WindowScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WINDOW_SCOPE_UNSPECIFIED: _ClassVar[WindowScope]
    WINDOW_SCOPE_SERVICE: _ClassVar[WindowScope]
    WINDOW_SCOPE_TEAM: _ClassVar[WindowScope]
    WINDOW_SCOPE_ALL: _ClassVar[WindowScope]
    WINDOW_SCOPE_GLOB: _ClassVar[WindowScope]
SERVICE_STATE_UNSPECIFIED: ServiceState
SERVICE_STATE_NEW: ServiceState
SERVICE_STATE_UP: ServiceState
SERVICE_STATE_DOWN: ServiceState
RECORD_OUTCOME_UNSPECIFIED: RecordOutcome
RECORD_OUTCOME_ACCEPTED: RecordOutcome
RECORD_OUTCOME_UNKNOWN_SERVICE: RecordOutcome
RECORD_OUTCOME_INACTIVE_SERVICE: RecordOutcome
RECORD_OUTCOME_INVALID: RecordOutcome
JOB_SIGNAL_UNSPECIFIED: JobSignal
JOB_SIGNAL_START: JobSignal
JOB_SIGNAL_COMPLETE: JobSignal
JOB_SIGNAL_FAIL: JobSignal
ALERT_REASON_UNSPECIFIED: AlertReason
ALERT_REASON_MISSED_HEARTBEATS: AlertReason
ALERT_REASON_REPORTED_FAILURE: AlertReason
ALERT_REASON_RUN_TOO_LONG: AlertReason
ALERT_REASON_RUN_TOO_FAST: AlertReason
SERVICE_CONDITION_UNSPECIFIED: ServiceCondition
SERVICE_CONDITION_UP: ServiceCondition
SERVICE_CONDITION_DOWN: ServiceCondition
SERVICE_CONDITION_NEW: ServiceCondition
SERVICE_CONDITION_MUTED: ServiceCondition
SERVICE_CONDITION_INACTIVE: ServiceCondition
SERVICE_SORT_UNSPECIFIED: ServiceSort
SERVICE_SORT_NAME: ServiceSort
SERVICE_SORT_STATE: ServiceSort
SERVICE_SORT_LAST_HEARTBEAT: ServiceSort
SERVICE_SORT_DEADLINE: ServiceSort
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_COMPLETED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_TIMED_OUT: RunStatus
RUN_STATUS_ABANDONED: RunStatus
WINDOW_SCOPE_UNSPECIFIED: WindowScope
WINDOW_SCOPE_SERVICE: WindowScope
WINDOW_SCOPE_TEAM: WindowScope
WINDOW_SCOPE_ALL: WindowScope
WINDOW_SCOPE_GLOB: WindowScope

class Service(_message.Message):
    __slots__ = ("service_id", "heartbeat_name", "service_name", "alert_interval_seconds", "threshold", "grace_period_seconds", "team", "priority", "runbook", "notify_mode", "active", "muted", "muted_at", "state", "created_at", "updated_at", "activated_at", "last_heartbeat_at", "deadline_at", "team_id", "mute_reason", "muted_by", "muted_until", "schedule", "timezone", "max_duration_seconds", "min_duration_seconds", "failure_tolerance", "consecutive_failures", "schedule_description")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ALERT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_MODE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    MUTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    MUTE_REASON_FIELD_NUMBER: _ClassVar[int]
    MUTED_BY_FIELD_NUMBER: _ClassVar[int]
    MUTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    heartbeat_name: str
    service_name: str
    alert_interval_seconds: int
    threshold: int
    grace_period_seconds: int
    team: str
    priority: _common_pb2.Priority
    runbook: str
    notify_mode: _common_pb2.NotifyMode
    active: bool
    muted: bool
    muted_at: _timestamp_pb2.Timestamp
    state: ServiceState
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    activated_at: _timestamp_pb2.Timestamp
    last_heartbeat_at: _timestamp_pb2.Timestamp
    deadline_at: _timestamp_pb2.Timestamp
    team_id: int
    mute_reason: str
    muted_by: str
    muted_until: _timestamp_pb2.Timestamp
    schedule: str
    timezone: str
    max_duration_seconds: int
    min_duration_seconds: int
    failure_tolerance: int
    consecutive_failures: int
    schedule_description: str
    def __init__(self, service_id: _Optional[int] = ..., heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ..., alert_interval_seconds: _Optional[int] = ..., threshold: _Optional[int] = ..., grace_period_seconds: _Optional[int] = ..., team: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., runbook: _Optional[str] = ..., notify_mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., active: _Optional[bool] = ..., muted: _Optional[bool] = ..., muted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[ServiceState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., team_id: _Optional[int] = ..., mute_reason: _Optional[str] = ..., muted_by: _Optional[str] = ..., muted_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schedule: _Optional[str] = ..., timezone: _Optional[str] = ..., max_duration_seconds: _Optional[int] = ..., min_duration_seconds: _Optional[int] = ..., failure_tolerance: _Optional[int] = ..., consecutive_failures: _Optional[int] = ..., schedule_description: _Optional[str] = ...) -> None: ...

class RegisterServiceRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_name", "alert_interval_seconds", "threshold", "grace_period_seconds", "team", "priority", "runbook", "notify_mode", "team_id", "schedule", "timezone", "max_duration_seconds", "min_duration_seconds", "failure_tolerance")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ALERT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_MODE_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_name: str
    alert_interval_seconds: int
    threshold: int
    grace_period_seconds: int
    team: str
    priority: _common_pb2.Priority
    runbook: str
    notify_mode: _common_pb2.NotifyMode
    team_id: int
    schedule: str
    timezone: str
    max_duration_seconds: int
    min_duration_seconds: int
    failure_tolerance: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ..., alert_interval_seconds: _Optional[int] = ..., threshold: _Optional[int] = ..., grace_period_seconds: _Optional[int] = ..., team: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., runbook: _Optional[str] = ..., notify_mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., team_id: _Optional[int] = ..., schedule: _Optional[str] = ..., timezone: _Optional[str] = ..., max_duration_seconds: _Optional[int] = ..., min_duration_seconds: _Optional[int] = ..., failure_tolerance: _Optional[int] = ...) -> None: ...

class RegisterServiceResponse(_message.Message):
    __slots__ = ("service", "created")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    service: Service
    created: bool
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetServiceRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ...) -> None: ...

class GetServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ("service_name", "active")
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    service_name: str
    active: bool
    def __init__(self, service_name: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[Service]
    def __init__(self, services: _Optional[_Iterable[_Union[Service, _Mapping]]] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id", "service_name", "alert_interval_seconds", "threshold", "grace_period_seconds", "team", "priority", "runbook", "notify_mode", "active", "muted", "down", "team_id", "schedule", "timezone", "max_duration_seconds", "min_duration_seconds", "failure_tolerance")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ALERT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_MODE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    service_name: str
    alert_interval_seconds: int
    threshold: int
    grace_period_seconds: int
    team: str
    priority: _common_pb2.Priority
    runbook: str
    notify_mode: _common_pb2.NotifyMode
    active: bool
    muted: bool
    down: bool
    team_id: int
    schedule: str
    timezone: str
    max_duration_seconds: int
    min_duration_seconds: int
    failure_tolerance: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ..., service_name: _Optional[str] = ..., alert_interval_seconds: _Optional[int] = ..., threshold: _Optional[int] = ..., grace_period_seconds: _Optional[int] = ..., team: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., runbook: _Optional[str] = ..., notify_mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., active: _Optional[bool] = ..., muted: _Optional[bool] = ..., down: _Optional[bool] = ..., team_id: _Optional[int] = ..., schedule: _Optional[str] = ..., timezone: _Optional[str] = ..., max_duration_seconds: _Optional[int] = ..., min_duration_seconds: _Optional[int] = ..., failure_tolerance: _Optional[int] = ...) -> None: ...

class UpdateServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class DeleteServiceRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ...) -> None: ...

class DeleteServiceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListServiceTransitionsRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id", "limit", "offset")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    limit: int
    offset: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ServiceTransition(_message.Message):
    __slots__ = ("transition_id", "service_id", "from_state", "to_state", "reason", "alert_id", "at", "suppressed_by")
    TRANSITION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_BY_FIELD_NUMBER: _ClassVar[int]
    transition_id: int
    service_id: int
    from_state: ServiceState
    to_state: ServiceState
    reason: str
    alert_id: int
    at: _timestamp_pb2.Timestamp
    suppressed_by: int
    def __init__(self, transition_id: _Optional[int] = ..., service_id: _Optional[int] = ..., from_state: _Optional[_Union[ServiceState, str]] = ..., to_state: _Optional[_Union[ServiceState, str]] = ..., reason: _Optional[str] = ..., alert_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., suppressed_by: _Optional[int] = ...) -> None: ...

class ListServiceTransitionsResponse(_message.Message):
    __slots__ = ("transitions", "has_more")
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    transitions: _containers.RepeatedCompositeFieldContainer[ServiceTransition]
    has_more: bool
    def __init__(self, transitions: _Optional[_Iterable[_Union[ServiceTransition, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class RecordHeartbeatRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id", "status", "run_id", "message")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    status: str
    run_id: str
    message: str
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ..., status: _Optional[str] = ..., run_id: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("heartbeat_id", "service_id", "heartbeat_name", "service_name", "time", "status", "run_id", "team", "priority")
    HEARTBEAT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    heartbeat_id: int
    service_id: int
    heartbeat_name: str
    service_name: str
    time: _timestamp_pb2.Timestamp
    status: str
    run_id: str
    team: str
    priority: _common_pb2.Priority
    def __init__(self, heartbeat_id: _Optional[int] = ..., service_id: _Optional[int] = ..., heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., run_id: _Optional[str] = ..., team: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ...) -> None: ...

class RecordHeartbeatResponse(_message.Message):
    __slots__ = ("heartbeat",)
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    heartbeat: Heartbeat
    def __init__(self, heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class RecordHeartbeatsRequest(_message.Message):
    __slots__ = ("heartbeats", "outcomes_only")
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_ONLY_FIELD_NUMBER: _ClassVar[int]
    heartbeats: _containers.RepeatedCompositeFieldContainer[RecordHeartbeatRequest]
    outcomes_only: bool
    def __init__(self, heartbeats: _Optional[_Iterable[_Union[RecordHeartbeatRequest, _Mapping]]] = ..., outcomes_only: _Optional[bool] = ...) -> None: ...

class RecordHeartbeatResult(_message.Message):
    __slots__ = ("outcome", "message", "heartbeat")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    outcome: RecordOutcome
    message: str
    heartbeat: Heartbeat
    def __init__(self, outcome: _Optional[_Union[RecordOutcome, str]] = ..., message: _Optional[str] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class RecordHeartbeatsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RecordHeartbeatResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RecordHeartbeatResult, _Mapping]]] = ...) -> None: ...

class RecordJobSignalRequest(_message.Message):
    __slots__ = ("service_id", "signal", "run_id", "message")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    signal: JobSignal
    run_id: str
    message: str
    def __init__(self, service_id: _Optional[int] = ..., signal: _Optional[_Union[JobSignal, str]] = ..., run_id: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RecordJobSignalResponse(_message.Message):
    __slots__ = ("heartbeat",)
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    heartbeat: Heartbeat
    def __init__(self, heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class ListHeartbeatsRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_name", "max_count", "offset")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_name: str
    max_count: int
    offset: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ..., max_count: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListHeartbeatsResponse(_message.Message):
    __slots__ = ("heartbeats", "has_more")
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    heartbeats: _containers.RepeatedCompositeFieldContainer[Heartbeat]
    has_more: bool
    def __init__(self, heartbeats: _Optional[_Iterable[_Union[Heartbeat, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("alert_id", "service_id", "heartbeat_name", "service_name", "reason", "active", "opened_at", "closed_at", "notification_count", "acknowledged_at", "acknowledged_by", "suppressed_by")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_BY_FIELD_NUMBER: _ClassVar[int]
    alert_id: int
    service_id: int
    heartbeat_name: str
    service_name: str
    reason: AlertReason
    active: bool
    opened_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    notification_count: int
    acknowledged_at: _timestamp_pb2.Timestamp
    acknowledged_by: str
    suppressed_by: int
    def __init__(self, alert_id: _Optional[int] = ..., service_id: _Optional[int] = ..., heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ..., reason: _Optional[_Union[AlertReason, str]] = ..., active: _Optional[bool] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., notification_count: _Optional[int] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by: _Optional[str] = ..., suppressed_by: _Optional[int] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("active", "limit", "offset")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    active: bool
    limit: int
    offset: int
    def __init__(self, active: _Optional[bool] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts", "has_more")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    has_more: bool
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class SearchServicesRequest(_message.Message):
    __slots__ = ("query", "condition", "team", "priority", "active", "sort", "descending", "page_size", "offset", "include_counts", "counts_only", "cursor", "last_page")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_ONLY_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LAST_PAGE_FIELD_NUMBER: _ClassVar[int]
    query: str
    condition: ServiceCondition
    team: str
    priority: _common_pb2.Priority
    active: bool
    sort: ServiceSort
    descending: bool
    page_size: int
    offset: int
    include_counts: bool
    counts_only: bool
    cursor: str
    last_page: bool
    def __init__(self, query: _Optional[str] = ..., condition: _Optional[_Union[ServiceCondition, str]] = ..., team: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., active: _Optional[bool] = ..., sort: _Optional[_Union[ServiceSort, str]] = ..., descending: _Optional[bool] = ..., page_size: _Optional[int] = ..., offset: _Optional[int] = ..., include_counts: _Optional[bool] = ..., counts_only: _Optional[bool] = ..., cursor: _Optional[str] = ..., last_page: _Optional[bool] = ...) -> None: ...

class ServiceCounts(_message.Message):
    __slots__ = ("up", "down", "new", "muted", "inactive", "total")
    UP_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    up: int
    down: int
    new: int
    muted: int
    inactive: int
    total: int
    def __init__(self, up: _Optional[int] = ..., down: _Optional[int] = ..., new: _Optional[int] = ..., muted: _Optional[int] = ..., inactive: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class SearchServicesResponse(_message.Message):
    __slots__ = ("services", "total_matching", "counts", "next_cursor", "previous_cursor")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MATCHING_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CURSOR_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[Service]
    total_matching: int
    counts: ServiceCounts
    next_cursor: str
    previous_cursor: str
    def __init__(self, services: _Optional[_Iterable[_Union[Service, _Mapping]]] = ..., total_matching: _Optional[int] = ..., counts: _Optional[_Union[ServiceCounts, _Mapping]] = ..., next_cursor: _Optional[str] = ..., previous_cursor: _Optional[str] = ...) -> None: ...

class ListRecentTransitionsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class RecentTransition(_message.Message):
    __slots__ = ("transition", "heartbeat_name", "service_name")
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    transition: ServiceTransition
    heartbeat_name: str
    service_name: str
    def __init__(self, transition: _Optional[_Union[ServiceTransition, _Mapping]] = ..., heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ...) -> None: ...

class ListRecentTransitionsResponse(_message.Message):
    __slots__ = ("transitions",)
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    transitions: _containers.RepeatedCompositeFieldContainer[RecentTransition]
    def __init__(self, transitions: _Optional[_Iterable[_Union[RecentTransition, _Mapping]]] = ...) -> None: ...

class GetHeartbeatTimelineRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id", "window_seconds", "buckets")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    window_seconds: int
    buckets: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ..., window_seconds: _Optional[int] = ..., buckets: _Optional[int] = ...) -> None: ...

class TimelineBucket(_message.Message):
    __slots__ = ("start", "heartbeats", "failures")
    START_FIELD_NUMBER: _ClassVar[int]
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    heartbeats: int
    failures: int
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., heartbeats: _Optional[int] = ..., failures: _Optional[int] = ...) -> None: ...

class GetHeartbeatTimelineResponse(_message.Message):
    __slots__ = ("start", "end", "bucket_seconds", "buckets")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    bucket_seconds: int
    buckets: _containers.RepeatedCompositeFieldContainer[TimelineBucket]
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bucket_seconds: _Optional[int] = ..., buckets: _Optional[_Iterable[_Union[TimelineBucket, _Mapping]]] = ...) -> None: ...

class SearchAlertsRequest(_message.Message):
    __slots__ = ("active", "service_id", "team", "reason", "limit", "include_total")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    active: bool
    service_id: int
    team: str
    reason: AlertReason
    limit: int
    include_total: bool
    def __init__(self, active: _Optional[bool] = ..., service_id: _Optional[int] = ..., team: _Optional[str] = ..., reason: _Optional[_Union[AlertReason, str]] = ..., limit: _Optional[int] = ..., include_total: _Optional[bool] = ...) -> None: ...

class AlertWithTeam(_message.Message):
    __slots__ = ("alert", "team")
    ALERT_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    alert: Alert
    team: str
    def __init__(self, alert: _Optional[_Union[Alert, _Mapping]] = ..., team: _Optional[str] = ...) -> None: ...

class SearchAlertsResponse(_message.Message):
    __slots__ = ("alerts", "total_matching")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MATCHING_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[AlertWithTeam]
    total_matching: int
    def __init__(self, alerts: _Optional[_Iterable[_Union[AlertWithTeam, _Mapping]]] = ..., total_matching: _Optional[int] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("event_id", "at", "source", "action_type", "resource", "resource_id", "service_id", "execution_id", "principal", "key_id", "key_name", "actor", "request_id", "bulk_id", "before", "after", "details")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    at: _timestamp_pb2.Timestamp
    source: str
    action_type: str
    resource: str
    resource_id: str
    service_id: int
    execution_id: int
    principal: str
    key_id: str
    key_name: str
    actor: str
    request_id: str
    bulk_id: str
    before: _struct_pb2.Struct
    after: _struct_pb2.Struct
    details: _struct_pb2.Struct
    def __init__(self, event_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., action_type: _Optional[str] = ..., resource: _Optional[str] = ..., resource_id: _Optional[str] = ..., service_id: _Optional[int] = ..., execution_id: _Optional[int] = ..., principal: _Optional[str] = ..., key_id: _Optional[str] = ..., key_name: _Optional[str] = ..., actor: _Optional[str] = ..., request_id: _Optional[str] = ..., bulk_id: _Optional[str] = ..., before: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("execution_id", "service_id", "action_type", "actor", "start", "end", "resource", "resource_id", "heartbeat_name", "bulk_id", "limit", "offset")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    service_id: int
    action_type: str
    actor: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    resource: str
    resource_id: str
    heartbeat_name: str
    bulk_id: str
    limit: int
    offset: int
    def __init__(self, execution_id: _Optional[int] = ..., service_id: _Optional[int] = ..., action_type: _Optional[str] = ..., actor: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resource: _Optional[str] = ..., resource_id: _Optional[str] = ..., heartbeat_name: _Optional[str] = ..., bulk_id: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "total_count", "limit", "offset", "has_more")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    total_count: int
    limit: int
    offset: int
    has_more: bool
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., total_count: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., has_more: _Optional[bool] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("snapshot_id", "service_id", "heartbeat_name", "action_type", "snapshot_data", "actor", "bulk_id", "created_at", "restored_at")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DATA_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RESTORED_AT_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    service_id: int
    heartbeat_name: str
    action_type: str
    snapshot_data: _struct_pb2.Struct
    actor: str
    bulk_id: str
    created_at: _timestamp_pb2.Timestamp
    restored_at: _timestamp_pb2.Timestamp
    def __init__(self, snapshot_id: _Optional[int] = ..., service_id: _Optional[int] = ..., heartbeat_name: _Optional[str] = ..., action_type: _Optional[str] = ..., snapshot_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., actor: _Optional[str] = ..., bulk_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., restored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("service_id", "action_type", "start", "end", "bulk_id", "limit", "offset")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    action_type: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    bulk_id: str
    limit: int
    offset: int
    def __init__(self, service_id: _Optional[int] = ..., action_type: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bulk_id: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots", "total_count", "limit", "offset", "has_more")
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    total_count: int
    limit: int
    offset: int
    has_more: bool
    def __init__(self, snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ..., total_count: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., has_more: _Optional[bool] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("snapshot_id",)
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    def __init__(self, snapshot_id: _Optional[int] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

class RestoreSnapshotRequest(_message.Message):
    __slots__ = ("snapshot_id",)
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    def __init__(self, snapshot_id: _Optional[int] = ...) -> None: ...

class RestoreSnapshotResponse(_message.Message):
    __slots__ = ("snapshot", "service", "recreated", "message")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    RECREATED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    service: Service
    recreated: bool
    message: str
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., service: _Optional[_Union[Service, _Mapping]] = ..., recreated: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class BulkUpdateServicesRequest(_message.Message):
    __slots__ = ("service_ids", "active", "muted", "priority", "team", "team_id", "alert_interval_seconds", "threshold", "grace_period_seconds")
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    service_ids: _containers.RepeatedScalarFieldContainer[int]
    active: bool
    muted: bool
    priority: _common_pb2.Priority
    team: str
    team_id: int
    alert_interval_seconds: int
    threshold: int
    grace_period_seconds: int
    def __init__(self, service_ids: _Optional[_Iterable[int]] = ..., active: _Optional[bool] = ..., muted: _Optional[bool] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., team: _Optional[str] = ..., team_id: _Optional[int] = ..., alert_interval_seconds: _Optional[int] = ..., threshold: _Optional[int] = ..., grace_period_seconds: _Optional[int] = ...) -> None: ...

class BulkUpdateServicesResponse(_message.Message):
    __slots__ = ("bulk_id", "changed")
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    changed: int
    def __init__(self, bulk_id: _Optional[str] = ..., changed: _Optional[int] = ...) -> None: ...

class UndoBulkChangeRequest(_message.Message):
    __slots__ = ("bulk_id",)
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    def __init__(self, bulk_id: _Optional[str] = ...) -> None: ...

class UndoBulkChangeResponse(_message.Message):
    __slots__ = ("bulk_id", "restored")
    BULK_ID_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    bulk_id: str
    restored: int
    def __init__(self, bulk_id: _Optional[str] = ..., restored: _Optional[int] = ...) -> None: ...

class JobRun(_message.Message):
    __slots__ = ("job_run_id", "service_id", "run_id", "status", "started_at", "completed_at", "duration_ms", "message")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_run_id: int
    service_id: int
    run_id: str
    status: RunStatus
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    duration_ms: int
    message: str
    def __init__(self, job_run_id: _Optional[int] = ..., service_id: _Optional[int] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ListJobRunsRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id", "limit", "offset")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    limit: int
    offset: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListJobRunsResponse(_message.Message):
    __slots__ = ("runs", "has_more")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[JobRun]
    has_more: bool
    def __init__(self, runs: _Optional[_Iterable[_Union[JobRun, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class GetJobStatsRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ...) -> None: ...

class GetJobStatsResponse(_message.Message):
    __slots__ = ("service_id", "run_count", "avg_duration_ms", "p50_duration_ms", "p95_duration_ms", "p99_duration_ms", "min_duration_ms", "max_duration_ms", "success_rate", "ended_runs")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    AVG_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    P50_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    P95_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    P99_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    ENDED_RUNS_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    run_count: int
    avg_duration_ms: float
    p50_duration_ms: float
    p95_duration_ms: float
    p99_duration_ms: float
    min_duration_ms: int
    max_duration_ms: int
    success_rate: float
    ended_runs: int
    def __init__(self, service_id: _Optional[int] = ..., run_count: _Optional[int] = ..., avg_duration_ms: _Optional[float] = ..., p50_duration_ms: _Optional[float] = ..., p95_duration_ms: _Optional[float] = ..., p99_duration_ms: _Optional[float] = ..., min_duration_ms: _Optional[int] = ..., max_duration_ms: _Optional[int] = ..., success_rate: _Optional[float] = ..., ended_runs: _Optional[int] = ...) -> None: ...

class AcknowledgeAlertRequest(_message.Message):
    __slots__ = ("alert_id",)
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    alert_id: int
    def __init__(self, alert_id: _Optional[int] = ...) -> None: ...

class AcknowledgeAlertResponse(_message.Message):
    __slots__ = ("alert",)
    ALERT_FIELD_NUMBER: _ClassVar[int]
    alert: Alert
    def __init__(self, alert: _Optional[_Union[Alert, _Mapping]] = ...) -> None: ...

class MuteServiceRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id", "reason", "until")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    reason: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ..., reason: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MuteServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class UnmuteServiceRequest(_message.Message):
    __slots__ = ("heartbeat_name", "service_id")
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    heartbeat_name: str
    service_id: int
    def __init__(self, heartbeat_name: _Optional[str] = ..., service_id: _Optional[int] = ...) -> None: ...

class UnmuteServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: Service
    def __init__(self, service: _Optional[_Union[Service, _Mapping]] = ...) -> None: ...

class ListNotificationSkipsRequest(_message.Message):
    __slots__ = ("alert_id", "service_id", "limit")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    alert_id: int
    service_id: int
    limit: int
    def __init__(self, alert_id: _Optional[int] = ..., service_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class NotificationSkip(_message.Message):
    __slots__ = ("skip_id", "alert_id", "service_id", "kind", "reason", "window_id", "at")
    SKIP_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    skip_id: int
    alert_id: int
    service_id: int
    kind: str
    reason: str
    window_id: int
    at: _timestamp_pb2.Timestamp
    def __init__(self, skip_id: _Optional[int] = ..., alert_id: _Optional[int] = ..., service_id: _Optional[int] = ..., kind: _Optional[str] = ..., reason: _Optional[str] = ..., window_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListNotificationSkipsResponse(_message.Message):
    __slots__ = ("skips",)
    SKIPS_FIELD_NUMBER: _ClassVar[int]
    skips: _containers.RepeatedCompositeFieldContainer[NotificationSkip]
    def __init__(self, skips: _Optional[_Iterable[_Union[NotificationSkip, _Mapping]]] = ...) -> None: ...

class MaintenanceWindow(_message.Message):
    __slots__ = ("window_id", "scope", "service_id", "team", "name_glob", "starts_at", "ends_at", "cron", "duration_seconds", "timezone", "reason", "created_by", "announce", "created_at", "updated_at", "open_now", "open_until", "next_start")
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    NAME_GLOB_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    OPEN_NOW_FIELD_NUMBER: _ClassVar[int]
    OPEN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_FIELD_NUMBER: _ClassVar[int]
    window_id: int
    scope: WindowScope
    service_id: int
    team: str
    name_glob: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    cron: str
    duration_seconds: int
    timezone: str
    reason: str
    created_by: str
    announce: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    open_now: bool
    open_until: _timestamp_pb2.Timestamp
    next_start: _timestamp_pb2.Timestamp
    def __init__(self, window_id: _Optional[int] = ..., scope: _Optional[_Union[WindowScope, str]] = ..., service_id: _Optional[int] = ..., team: _Optional[str] = ..., name_glob: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cron: _Optional[str] = ..., duration_seconds: _Optional[int] = ..., timezone: _Optional[str] = ..., reason: _Optional[str] = ..., created_by: _Optional[str] = ..., announce: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open_now: _Optional[bool] = ..., open_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MaintenanceWindowSpec(_message.Message):
    __slots__ = ("scope", "service_id", "team", "name_glob", "starts_at", "ends_at", "cron", "duration_seconds", "timezone", "reason", "announce")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    NAME_GLOB_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCE_FIELD_NUMBER: _ClassVar[int]
    scope: WindowScope
    service_id: int
    team: str
    name_glob: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    cron: str
    duration_seconds: int
    timezone: str
    reason: str
    announce: bool
    def __init__(self, scope: _Optional[_Union[WindowScope, str]] = ..., service_id: _Optional[int] = ..., team: _Optional[str] = ..., name_glob: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cron: _Optional[str] = ..., duration_seconds: _Optional[int] = ..., timezone: _Optional[str] = ..., reason: _Optional[str] = ..., announce: _Optional[bool] = ...) -> None: ...

class CreateMaintenanceWindowRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: MaintenanceWindowSpec
    def __init__(self, window: _Optional[_Union[MaintenanceWindowSpec, _Mapping]] = ...) -> None: ...

class CreateMaintenanceWindowResponse(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: MaintenanceWindow
    def __init__(self, window: _Optional[_Union[MaintenanceWindow, _Mapping]] = ...) -> None: ...

class GetMaintenanceWindowRequest(_message.Message):
    __slots__ = ("window_id",)
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    window_id: int
    def __init__(self, window_id: _Optional[int] = ...) -> None: ...

class GetMaintenanceWindowResponse(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: MaintenanceWindow
    def __init__(self, window: _Optional[_Union[MaintenanceWindow, _Mapping]] = ...) -> None: ...

class ListMaintenanceWindowsRequest(_message.Message):
    __slots__ = ("active_only",)
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    def __init__(self, active_only: _Optional[bool] = ...) -> None: ...

class ListMaintenanceWindowsResponse(_message.Message):
    __slots__ = ("windows",)
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[MaintenanceWindow]
    def __init__(self, windows: _Optional[_Iterable[_Union[MaintenanceWindow, _Mapping]]] = ...) -> None: ...

class UpdateMaintenanceWindowRequest(_message.Message):
    __slots__ = ("window_id", "window")
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window_id: int
    window: MaintenanceWindowSpec
    def __init__(self, window_id: _Optional[int] = ..., window: _Optional[_Union[MaintenanceWindowSpec, _Mapping]] = ...) -> None: ...

class UpdateMaintenanceWindowResponse(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: MaintenanceWindow
    def __init__(self, window: _Optional[_Union[MaintenanceWindow, _Mapping]] = ...) -> None: ...

class DeleteMaintenanceWindowRequest(_message.Message):
    __slots__ = ("window_id",)
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    window_id: int
    def __init__(self, window_id: _Optional[int] = ...) -> None: ...

class DeleteMaintenanceWindowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
