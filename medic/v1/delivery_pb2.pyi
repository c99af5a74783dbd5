import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from medic.v1 import common_pb2 as _common_pb2
from medic.v1 import events_pb2 as _events_pb2
from medic.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TargetType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TARGET_TYPE_UNSPECIFIED: _ClassVar[TargetType]
    TARGET_TYPE_SLACK: _ClassVar[TargetType]
    TARGET_TYPE_PAGERDUTY: _ClassVar[TargetType]
    TARGET_TYPE_WEBHOOK: _ClassVar[TargetType]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_RETRYING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_SUCCESS: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_SKIPPED: _ClassVar[DeliveryStatus]
TARGET_TYPE_UNSPECIFIED: TargetType
TARGET_TYPE_SLACK: TargetType
TARGET_TYPE_PAGERDUTY: TargetType
TARGET_TYPE_WEBHOOK: TargetType
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_RETRYING: DeliveryStatus
DELIVERY_STATUS_SUCCESS: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus
DELIVERY_STATUS_SKIPPED: DeliveryStatus

class PlannedTarget(_message.Message):
    __slots__ = ("type", "target_id", "webhook_id", "config")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    type: TargetType
    target_id: int
    webhook_id: int
    config: _struct_pb2.Struct
    def __init__(self, type: _Optional[_Union[TargetType, str]] = ..., target_id: _Optional[int] = ..., webhook_id: _Optional[int] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EnqueueNotificationsRequest(_message.Message):
    __slots__ = ("event", "mode", "targets", "subscriptions")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    event: _events_pb2.AlertEvent
    mode: _common_pb2.NotifyMode
    targets: _containers.RepeatedCompositeFieldContainer[PlannedTarget]
    subscriptions: _containers.RepeatedCompositeFieldContainer[PlannedTarget]
    def __init__(self, event: _Optional[_Union[_events_pb2.AlertEvent, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., targets: _Optional[_Iterable[_Union[PlannedTarget, _Mapping]]] = ..., subscriptions: _Optional[_Iterable[_Union[PlannedTarget, _Mapping]]] = ...) -> None: ...

class EnqueueNotificationsResponse(_message.Message):
    __slots__ = ("delivery_ids", "created")
    DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    delivery_ids: _containers.RepeatedScalarFieldContainer[int]
    created: bool
    def __init__(self, delivery_ids: _Optional[_Iterable[int]] = ..., created: _Optional[bool] = ...) -> None: ...

class EnqueueNotificationsBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[EnqueueNotificationsRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[EnqueueNotificationsRequest, _Mapping]]] = ...) -> None: ...

class EnqueueNotificationsBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EnqueueNotificationsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EnqueueNotificationsResult, _Mapping]]] = ...) -> None: ...

class EnqueueNotificationsResult(_message.Message):
    __slots__ = ("code", "message", "response")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    response: EnqueueNotificationsResponse
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., response: _Optional[_Union[EnqueueNotificationsResponse, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("delivery_id", "event_id", "kind", "alert_id", "service_id", "type", "target_id", "webhook_id", "destination", "mode", "position", "status", "idempotency_key", "attempts", "created_at", "next_attempt_at", "last_attempt_at", "last_response_code", "last_response_body", "last_error", "last_latency_ms", "updated_at")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RESPONSE_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    delivery_id: int
    event_id: str
    kind: _events_pb2.AlertEventKind
    alert_id: int
    service_id: int
    type: TargetType
    target_id: int
    webhook_id: int
    destination: str
    mode: _common_pb2.NotifyMode
    position: int
    status: DeliveryStatus
    idempotency_key: str
    attempts: int
    created_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    last_attempt_at: _timestamp_pb2.Timestamp
    last_response_code: int
    last_response_body: str
    last_error: str
    last_latency_ms: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, delivery_id: _Optional[int] = ..., event_id: _Optional[str] = ..., kind: _Optional[_Union[_events_pb2.AlertEventKind, str]] = ..., alert_id: _Optional[int] = ..., service_id: _Optional[int] = ..., type: _Optional[_Union[TargetType, str]] = ..., target_id: _Optional[int] = ..., webhook_id: _Optional[int] = ..., destination: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.NotifyMode, str]] = ..., position: _Optional[int] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., idempotency_key: _Optional[str] = ..., attempts: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_response_code: _Optional[int] = ..., last_response_body: _Optional[str] = ..., last_error: _Optional[str] = ..., last_latency_ms: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("alert_id", "service_id", "target_id", "webhook_id", "status", "limit", "offset", "type", "created_after")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    alert_id: int
    service_id: int
    target_id: int
    webhook_id: int
    status: DeliveryStatus
    limit: int
    offset: int
    type: TargetType
    created_after: _timestamp_pb2.Timestamp
    def __init__(self, alert_id: _Optional[int] = ..., service_id: _Optional[int] = ..., target_id: _Optional[int] = ..., webhook_id: _Optional[int] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., type: _Optional[_Union[TargetType, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "has_more")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    has_more: bool
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class RetryDeliveryRequest(_message.Message):
    __slots__ = ("delivery_id",)
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: int
    def __init__(self, delivery_id: _Optional[int] = ...) -> None: ...

class RetryDeliveryResponse(_message.Message):
    __slots__ = ("delivery",)
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("webhook_id", "url", "service_id", "headers", "enabled", "has_secret", "created_at", "updated_at")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    HAS_SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    webhook_id: int
    url: str
    service_id: int
    headers: _containers.ScalarMap[str, str]
    enabled: bool
    has_secret: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, webhook_id: _Optional[int] = ..., url: _Optional[str] = ..., service_id: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., enabled: _Optional[bool] = ..., has_secret: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWebhookRequest(_message.Message):
    __slots__ = ("url", "service_id", "headers", "secret", "enabled")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    url: str
    service_id: int
    headers: _containers.ScalarMap[str, str]
    secret: str
    enabled: bool
    def __init__(self, url: _Optional[str] = ..., service_id: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., secret: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class CreateWebhookResponse(_message.Message):
    __slots__ = ("webhook", "secret")
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    secret: str
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    def __init__(self, service_id: _Optional[int] = ...) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class WebhookHeaders(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, str]
    def __init__(self, values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpdateWebhookRequest(_message.Message):
    __slots__ = ("webhook_id", "url", "service_id", "headers", "secret", "enabled")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    webhook_id: int
    url: str
    service_id: int
    headers: WebhookHeaders
    secret: str
    enabled: bool
    def __init__(self, webhook_id: _Optional[int] = ..., url: _Optional[str] = ..., service_id: _Optional[int] = ..., headers: _Optional[_Union[WebhookHeaders, _Mapping]] = ..., secret: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class UpdateWebhookResponse(_message.Message):
    __slots__ = ("webhook",)
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ...) -> None: ...

class DeleteWebhookRequest(_message.Message):
    __slots__ = ("webhook_id",)
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: int
    def __init__(self, webhook_id: _Optional[int] = ...) -> None: ...

class DeleteWebhookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhooksForServiceRequest(_message.Message):
    __slots__ = ("service_id",)
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    def __init__(self, service_id: _Optional[int] = ...) -> None: ...

class ListWebhooksForServiceResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class ListWebhooksForServicesRequest(_message.Message):
    __slots__ = ("service_ids",)
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    service_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, service_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ListWebhooksForServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceWebhooks]
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceWebhooks, _Mapping]]] = ...) -> None: ...

class ServiceWebhooks(_message.Message):
    __slots__ = ("service_id", "webhooks")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    service_id: int
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, service_id: _Optional[int] = ..., webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...
