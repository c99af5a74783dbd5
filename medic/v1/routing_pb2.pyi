import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from medic.v1 import common_pb2 as _common_pb2
from medic.v1 import delivery_pb2 as _delivery_pb2
from medic.v1 import events_pb2 as _events_pb2
from medic.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RouteSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_SOURCE_UNSPECIFIED: _ClassVar[RouteSource]
    ROUTE_SOURCE_SERVICE_TARGETS: _ClassVar[RouteSource]
    ROUTE_SOURCE_TEAM_CHANNEL: _ClassVar[RouteSource]
    ROUTE_SOURCE_DEFAULT_CHANNEL: _ClassVar[RouteSource]
    ROUTE_SOURCE_ALERT_ROUTE: _ClassVar[RouteSource]
    ROUTE_SOURCE_UNROUTED: _ClassVar[RouteSource]
ROUTE_SOURCE_UNSPECIFIED: RouteSource
ROUTE_SOURCE_SERVICE_TARGETS: RouteSource
ROUTE_SOURCE_TEAM_CHANNEL: RouteSource
ROUTE_SOURCE_DEFAULT_CHANNEL: RouteSource
ROUTE_SOURCE_ALERT_ROUTE: RouteSource
ROUTE_SOURCE_UNROUTED: RouteSource

class Team(_message.Message):
    __slots__ = ("team_id", "name", "slack_channel_id", "created_at", "updated_at")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLACK_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    team_id: int
    name: str
    slack_channel_id: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, team_id: _Optional[int] = ..., name: _Optional[str] = ..., slack_channel_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTeamRequest(_message.Message):
    __slots__ = ("name", "slack_channel_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLACK_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    slack_channel_id: str
    def __init__(self, name: _Optional[str] = ..., slack_channel_id: _Optional[str] = ...) -> None: ...

class CreateTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class GetTeamRequest(_message.Message):
    __slots__ = ("team_id", "name")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    team_id: int
    name: str
    def __init__(self, team_id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class GetTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class ListTeamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTeamsResponse(_message.Message):
    __slots__ = ("teams",)
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    teams: _containers.RepeatedCompositeFieldContainer[Team]
    def __init__(self, teams: _Optional[_Iterable[_Union[Team, _Mapping]]] = ...) -> None: ...

class UpdateTeamRequest(_message.Message):
    __slots__ = ("team_id", "name", "slack_channel_id")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLACK_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: int
    name: str
    slack_channel_id: str
    def __init__(self, team_id: _Optional[int] = ..., name: _Optional[str] = ..., slack_channel_id: _Optional[str] = ...) -> None: ...

class UpdateTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: Team
    def __init__(self, team: _Optional[_Union[Team, _Mapping]] = ...) -> None: ...

class DeleteTeamRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: int
    def __init__(self, team_id: _Optional[int] = ...) -> None: ...

class DeleteTeamResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NotificationTarget(_message.Message):
    __slots__ = ("target_id", "service_id", "type", "config", "priority", "enabled", "created_at", "updated_at", "active_hours")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_HOURS_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    service_id: int
    type: _delivery_pb2.TargetType
    config: _struct_pb2.Struct
    priority: int
    enabled: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    active_hours: _struct_pb2.Struct
    def __init__(self, target_id: _Optional[int] = ..., service_id: _Optional[int] = ..., type: _Optional[_Union[_delivery_pb2.TargetType, str]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ..., enabled: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active_hours: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateNotificationTargetRequest(_message.Message):
    __slots__ = ("service_id", "type", "config", "priority", "enabled", "active_hours")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_HOURS_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    type: _delivery_pb2.TargetType
    config: _struct_pb2.Struct
    priority: int
    enabled: bool
    active_hours: _struct_pb2.Struct
    def __init__(self, service_id: _Optional[int] = ..., type: _Optional[_Union[_delivery_pb2.TargetType, str]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ..., enabled: _Optional[bool] = ..., active_hours: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateNotificationTargetResponse(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: NotificationTarget
    def __init__(self, target: _Optional[_Union[NotificationTarget, _Mapping]] = ...) -> None: ...

class ListNotificationTargetsRequest(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    def __init__(self, service_id: _Optional[int] = ...) -> None: ...

class ListNotificationTargetsResponse(_message.Message):
    __slots__ = ("targets",)
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[NotificationTarget]
    def __init__(self, targets: _Optional[_Iterable[_Union[NotificationTarget, _Mapping]]] = ...) -> None: ...

class UpdateNotificationTargetRequest(_message.Message):
    __slots__ = ("target_id", "type", "config", "priority", "enabled", "active_hours", "clear_active_hours")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_HOURS_FIELD_NUMBER: _ClassVar[int]
    CLEAR_ACTIVE_HOURS_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    type: _delivery_pb2.TargetType
    config: _struct_pb2.Struct
    priority: int
    enabled: bool
    active_hours: _struct_pb2.Struct
    clear_active_hours: bool
    def __init__(self, target_id: _Optional[int] = ..., type: _Optional[_Union[_delivery_pb2.TargetType, str]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ..., enabled: _Optional[bool] = ..., active_hours: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., clear_active_hours: _Optional[bool] = ...) -> None: ...

class UpdateNotificationTargetResponse(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: NotificationTarget
    def __init__(self, target: _Optional[_Union[NotificationTarget, _Mapping]] = ...) -> None: ...

class DeleteNotificationTargetRequest(_message.Message):
    __slots__ = ("target_id",)
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    def __init__(self, target_id: _Optional[int] = ...) -> None: ...

class DeleteNotificationTargetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RouteAlertRequest(_message.Message):
    __slots__ = ("event", "mode_override")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MODE_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    event: _events_pb2.AlertEvent
    mode_override: _common_pb2.NotifyMode
    def __init__(self, event: _Optional[_Union[_events_pb2.AlertEvent, _Mapping]] = ..., mode_override: _Optional[_Union[_common_pb2.NotifyMode, str]] = ...) -> None: ...

class RouteAlertsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RouteAlertRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[RouteAlertRequest, _Mapping]]] = ...) -> None: ...

class RouteAlertsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RouteAlertResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RouteAlertResult, _Mapping]]] = ...) -> None: ...

class RouteAlertResult(_message.Message):
    __slots__ = ("code", "message", "response")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    response: RouteAlertResponse
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., response: _Optional[_Union[RouteAlertResponse, _Mapping]] = ...) -> None: ...

class RouteAlertResponse(_message.Message):
    __slots__ = ("mode", "source", "targets", "skipped", "subscriptions", "unrouted", "enqueued")
    MODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    UNROUTED_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    mode: _common_pb2.NotifyMode
    source: RouteSource
    targets: _containers.RepeatedCompositeFieldContainer[_delivery_pb2.PlannedTarget]
    skipped: _containers.RepeatedCompositeFieldContainer[NotificationTarget]
    subscriptions: _containers.RepeatedCompositeFieldContainer[_delivery_pb2.PlannedTarget]
    unrouted: bool
    enqueued: bool
    def __init__(self, mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., source: _Optional[_Union[RouteSource, str]] = ..., targets: _Optional[_Iterable[_Union[_delivery_pb2.PlannedTarget, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[NotificationTarget, _Mapping]]] = ..., subscriptions: _Optional[_Iterable[_Union[_delivery_pb2.PlannedTarget, _Mapping]]] = ..., unrouted: _Optional[bool] = ..., enqueued: _Optional[bool] = ...) -> None: ...

class ListTargetSkipsRequest(_message.Message):
    __slots__ = ("alert_id", "limit")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    alert_id: int
    limit: int
    def __init__(self, alert_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class TargetSkip(_message.Message):
    __slots__ = ("skip_id", "alert_id", "event_id", "kind", "target_id", "reason", "at")
    SKIP_ID_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    skip_id: int
    alert_id: int
    event_id: str
    kind: str
    target_id: int
    reason: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, skip_id: _Optional[int] = ..., alert_id: _Optional[int] = ..., event_id: _Optional[str] = ..., kind: _Optional[str] = ..., target_id: _Optional[int] = ..., reason: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTargetSkipsResponse(_message.Message):
    __slots__ = ("skips",)
    SKIPS_FIELD_NUMBER: _ClassVar[int]
    skips: _containers.RepeatedCompositeFieldContainer[TargetSkip]
    def __init__(self, skips: _Optional[_Iterable[_Union[TargetSkip, _Mapping]]] = ...) -> None: ...
