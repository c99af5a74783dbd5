import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from medic.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthorizeVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHORIZE_VERDICT_UNSPECIFIED: _ClassVar[AuthorizeVerdict]
    AUTHORIZE_VERDICT_VALID: _ClassVar[AuthorizeVerdict]
    AUTHORIZE_VERDICT_INVALID_KEY: _ClassVar[AuthorizeVerdict]
    AUTHORIZE_VERDICT_EXPIRED_KEY: _ClassVar[AuthorizeVerdict]
    AUTHORIZE_VERDICT_REVOKED_KEY: _ClassVar[AuthorizeVerdict]
AUTHORIZE_VERDICT_UNSPECIFIED: AuthorizeVerdict
AUTHORIZE_VERDICT_VALID: AuthorizeVerdict
AUTHORIZE_VERDICT_INVALID_KEY: AuthorizeVerdict
AUTHORIZE_VERDICT_EXPIRED_KEY: AuthorizeVerdict
AUTHORIZE_VERDICT_REVOKED_KEY: AuthorizeVerdict

class RateLimitOverrides(_message.Message):
    __slots__ = ("heartbeat_per_minute", "management_per_minute")
    HEARTBEAT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MANAGEMENT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    heartbeat_per_minute: int
    management_per_minute: int
    def __init__(self, heartbeat_per_minute: _Optional[int] = ..., management_per_minute: _Optional[int] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "name", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at", "rate_limits")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[_options_pb2.Scope]
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    rate_limits: RateLimitOverrides
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[_options_pb2.Scope, str]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_limits: _Optional[_Union[RateLimitOverrides, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("name", "scopes", "expires_at", "rate_limits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[_options_pb2.Scope]
    expires_at: _timestamp_pb2.Timestamp
    rate_limits: RateLimitOverrides
    def __init__(self, name: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[_options_pb2.Scope, str]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_limits: _Optional[_Union[RateLimitOverrides, _Mapping]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "key")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    key: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class SetRateLimitsRequest(_message.Message):
    __slots__ = ("key_id", "rate_limits")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    rate_limits: RateLimitOverrides
    def __init__(self, key_id: _Optional[str] = ..., rate_limits: _Optional[_Union[RateLimitOverrides, _Mapping]] = ...) -> None: ...

class SetRateLimitsResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("key", "client_address")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    key: str
    client_address: str
    def __init__(self, key: _Optional[str] = ..., client_address: _Optional[str] = ...) -> None: ...

class EffectiveRateLimits(_message.Message):
    __slots__ = ("heartbeat_per_minute", "management_per_minute")
    HEARTBEAT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MANAGEMENT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    heartbeat_per_minute: int
    management_per_minute: int
    def __init__(self, heartbeat_per_minute: _Optional[int] = ..., management_per_minute: _Optional[int] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("verdict", "key_id", "name", "scopes", "rate_limits", "expires_at")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    verdict: AuthorizeVerdict
    key_id: str
    name: str
    scopes: _containers.RepeatedScalarFieldContainer[_options_pb2.Scope]
    rate_limits: EffectiveRateLimits
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, verdict: _Optional[_Union[AuthorizeVerdict, str]] = ..., key_id: _Optional[str] = ..., name: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[_options_pb2.Scope, str]]] = ..., rate_limits: _Optional[_Union[EffectiveRateLimits, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
