import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from medic.v1 import common_pb2 as _common_pb2
from medic.v1 import heartbeat_pb2 as _heartbeat_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_EVENT_KIND_UNSPECIFIED: _ClassVar[AlertEventKind]
    ALERT_EVENT_KIND_TRIGGER: _ClassVar[AlertEventKind]
    ALERT_EVENT_KIND_REMINDER: _ClassVar[AlertEventKind]
    ALERT_EVENT_KIND_RESOLVE: _ClassVar[AlertEventKind]
    ALERT_EVENT_KIND_ACKNOWLEDGE: _ClassVar[AlertEventKind]
    ALERT_EVENT_KIND_WINDOW_STARTED: _ClassVar[AlertEventKind]
    ALERT_EVENT_KIND_WINDOW_ENDED: _ClassVar[AlertEventKind]
ALERT_EVENT_KIND_UNSPECIFIED: AlertEventKind
ALERT_EVENT_KIND_TRIGGER: AlertEventKind
ALERT_EVENT_KIND_REMINDER: AlertEventKind
ALERT_EVENT_KIND_RESOLVE: AlertEventKind
ALERT_EVENT_KIND_ACKNOWLEDGE: AlertEventKind
ALERT_EVENT_KIND_WINDOW_STARTED: AlertEventKind
ALERT_EVENT_KIND_WINDOW_ENDED: AlertEventKind

class ServiceFacts(_message.Message):
    __slots__ = ("service_id", "heartbeat_name", "service_name", "team", "team_id", "priority", "runbook", "notify_mode", "last_heartbeat_at", "alert_interval_seconds")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_MODE_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    ALERT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    heartbeat_name: str
    service_name: str
    team: str
    team_id: int
    priority: _common_pb2.Priority
    runbook: str
    notify_mode: _common_pb2.NotifyMode
    last_heartbeat_at: _timestamp_pb2.Timestamp
    alert_interval_seconds: int
    def __init__(self, service_id: _Optional[int] = ..., heartbeat_name: _Optional[str] = ..., service_name: _Optional[str] = ..., team: _Optional[str] = ..., team_id: _Optional[int] = ..., priority: _Optional[_Union[_common_pb2.Priority, str]] = ..., runbook: _Optional[str] = ..., notify_mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., last_heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., alert_interval_seconds: _Optional[int] = ...) -> None: ...

class AlertEvent(_message.Message):
    __slots__ = ("event_id", "kind", "alert_id", "reason", "service", "opened_at", "closed_at", "occurred_at", "run", "window")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: AlertEventKind
    alert_id: int
    reason: _heartbeat_pb2.AlertReason
    service: ServiceFacts
    opened_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    occurred_at: _timestamp_pb2.Timestamp
    run: RunFacts
    window: WindowFacts
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[_Union[AlertEventKind, str]] = ..., alert_id: _Optional[int] = ..., reason: _Optional[_Union[_heartbeat_pb2.AlertReason, str]] = ..., service: _Optional[_Union[ServiceFacts, _Mapping]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run: _Optional[_Union[RunFacts, _Mapping]] = ..., window: _Optional[_Union[WindowFacts, _Mapping]] = ...) -> None: ...

class WindowFacts(_message.Message):
    __slots__ = ("window_id", "reason", "starts_at", "ends_at")
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    window_id: int
    reason: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    def __init__(self, window_id: _Optional[int] = ..., reason: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunFacts(_message.Message):
    __slots__ = ("run_id", "status", "output")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    status: str
    output: str
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...
