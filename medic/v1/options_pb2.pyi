from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_READ: _ClassVar[Scope]
    SCOPE_WRITE: _ClassVar[Scope]
    SCOPE_ADMIN: _ClassVar[Scope]

class RateLimitClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATE_LIMIT_CLASS_UNSPECIFIED: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_HEARTBEAT: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_MANAGEMENT: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_CONSOLE: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_PLAYBOOK_EXECUTE: _ClassVar[RateLimitClass]
SCOPE_UNSPECIFIED: Scope
SCOPE_READ: Scope
SCOPE_WRITE: Scope
SCOPE_ADMIN: Scope
RATE_LIMIT_CLASS_UNSPECIFIED: RateLimitClass
RATE_LIMIT_CLASS_HEARTBEAT: RateLimitClass
RATE_LIMIT_CLASS_MANAGEMENT: RateLimitClass
RATE_LIMIT_CLASS_CONSOLE: RateLimitClass
RATE_LIMIT_CLASS_PLAYBOOK_EXECUTE: RateLimitClass
REQUIRED_SCOPE_FIELD_NUMBER: _ClassVar[int]
required_scope: _descriptor.FieldDescriptor
RATE_LIMIT_CLASS_FIELD_NUMBER: _ClassVar[int]
rate_limit_class: _descriptor.FieldDescriptor
LIMITS_FIELD_NUMBER: _ClassVar[int]
limits: _descriptor.FieldDescriptor

class FieldLimits(_message.Message):
    __slots__ = ("min", "max", "required", "max_length")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    required: bool
    max_length: int
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ..., required: _Optional[bool] = ..., max_length: _Optional[int] = ...) -> None: ...
