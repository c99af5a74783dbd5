"""Protobuf enum values <-> the strings Medic stores and speaks, derived from the
proto descriptors: the one place that spells them.

A value's string is its name without the enum's prefix, in lower case:
``PRIORITY_P1`` <-> ``"p1"``, ``NOTIFY_MODE_UNTIL_SUCCESS`` <-> ``"until_success"``.
The zero value (``*_UNSPECIFIED``) has none. The database columns hold these
strings, and the HTTP APIs (the legacy API's fields, ``/v2`` JSON) use them too.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import EnumDescriptor

from medic.v1 import (auth_pb2, common_pb2, delivery_pb2, events_pb2, heartbeat_pb2, options_pb2, remediation_pb2,
                      routing_pb2)


def prefix(enum: EnumDescriptor) -> str:
    """The prefix of the enum's value names: ``TargetType`` -> ``TARGET_TYPE_``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


@dataclass(frozen=True)
class EnumStrings:
    descriptor: EnumDescriptor
    names: Mapping[int, str]    # value -> string
    numbers: Mapping[str, int]  # string -> value

    @property
    def choices(self) -> tuple[str, ...]:
        """The strings, in the order the values are declared."""
        return tuple(self.names.values())


@functools.cache
def strings(enum) -> EnumStrings:
    """The strings of ``enum`` (an ``EnumDescriptor`` or a generated enum, such as
    ``common_pb2.Priority``)."""
    descriptor: EnumDescriptor = getattr(enum, "DESCRIPTOR", enum)
    cut = prefix(descriptor)
    names = {value.number: value.name.removeprefix(cut).lower()
             for value in descriptor.values if value.number != 0}
    return EnumStrings(descriptor, names, {name: number for number, name in names.items()})


PRIORITY = strings(common_pb2.Priority)
NOTIFY_MODE = strings(common_pb2.NotifyMode)
SERVICE_STATE = strings(heartbeat_pb2.ServiceState)
ALERT_REASON = strings(heartbeat_pb2.AlertReason)
RECORD_OUTCOME = strings(heartbeat_pb2.RecordOutcome)
JOB_SIGNAL = strings(heartbeat_pb2.JobSignal)
RUN_STATUS = strings(heartbeat_pb2.RunStatus)
ALERT_EVENT_KIND = strings(events_pb2.AlertEventKind)
TARGET_TYPE = strings(delivery_pb2.TargetType)
DELIVERY_STATUS = strings(delivery_pb2.DeliveryStatus)
ROUTE_SOURCE = strings(routing_pb2.RouteSource)
SCOPE = strings(options_pb2.Scope)
RATE_LIMIT_CLASS = strings(options_pb2.RateLimitClass)
AUTHORIZE_VERDICT = strings(auth_pb2.AuthorizeVerdict)
EXECUTION_STATUS = strings(remediation_pb2.ExecutionStatus)
STEP_STATUS = strings(remediation_pb2.StepStatus)
APPROVAL_MODE = strings(remediation_pb2.ApprovalMode)
SERVICE_CONDITION = strings(heartbeat_pb2.ServiceCondition)
SERVICE_SORT = strings(heartbeat_pb2.ServiceSort)
WINDOW_SCOPE = strings(heartbeat_pb2.WindowScope)
