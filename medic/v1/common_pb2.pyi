from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_P1: _ClassVar[Priority]
    PRIORITY_P2: _ClassVar[Priority]
    PRIORITY_P3: _ClassVar[Priority]
    PRIORITY_P4: _ClassVar[Priority]
    PRIORITY_P5: _ClassVar[Priority]

class NotifyMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFY_MODE_UNSPECIFIED: _ClassVar[NotifyMode]
    NOTIFY_MODE_ALL: _ClassVar[NotifyMode]
    NOTIFY_MODE_UNTIL_SUCCESS: _ClassVar[NotifyMode]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_P1: Priority
PRIORITY_P2: Priority
PRIORITY_P3: Priority
PRIORITY_P4: Priority
PRIORITY_P5: Priority
NOTIFY_MODE_UNSPECIFIED: NotifyMode
NOTIFY_MODE_ALL: NotifyMode
NOTIFY_MODE_UNTIL_SUCCESS: NotifyMode
