"""What the contracts say about each RPC, read from the proto descriptors.

Every RPC declares its required scope (and optionally its rate-limit class)
with a method option in its ``.proto`` file; ``policy_for`` returns both for a
full method name such as ``/medic.v1.HeartbeatService/RecordHeartbeat``.

Request fields declare their limits (integer ranges, required strings, lengths)
with the ``limits`` field option; ``limit_violation`` checks a request against
them and ``field_limits`` tells one field's (for the gateway and its OpenAPI
document).
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

import medic.v1
from medic import enums
from medic.errors import InvalidArgument
from medic.v1 import options_pb2

# Paths served without authentication (standard gRPC health and reflection).
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class MethodPolicy:
    method: str
    scope: int          # options_pb2.Scope value
    rate_limit_class: int  # options_pb2.RateLimitClass value

    # Read on every authorized call: worked out once per policy.
    @functools.cached_property
    def scope_name(self) -> str:
        return enums.SCOPE.names[self.scope]

    @functools.cached_property
    def rate_limit_class_name(self) -> str:
        # An RPC that declares no class counts as management.
        return enums.RATE_LIMIT_CLASS.names.get(self.rate_limit_class, "management")


def _pb2_modules():
    for info in pkgutil.iter_modules(medic.v1.__path__):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(f"medic.v1.{info.name}")


@functools.cache
def policies() -> dict[str, MethodPolicy]:
    table = {}
    for module in _pb2_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                opts = method.GetOptions()
                name = f"/{service.full_name}/{method.name}"
                table[name] = MethodPolicy(
                    method=name,
                    scope=opts.Extensions[options_pb2.required_scope],
                    rate_limit_class=opts.Extensions[options_pb2.rate_limit_class],
                )
    return table


def policy_for(method: str) -> MethodPolicy | None:
    return policies().get(method)


def is_public(method: str) -> bool:
    return method.startswith(PUBLIC_METHOD_PREFIXES)


# --- field limits (the `limits` field option) ---------------------------------

_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


@dataclass(frozen=True)
class Limits:
    """A field's documented limits: its ``limits`` option, bounded by its type."""
    minimum: int | None = None   # integers: inclusive bounds (the type's when not declared)
    maximum: int | None = None
    required: bool = False
    max_length: int | None = None

    def violation(self, name: str, value) -> str | None:
        """Why ``value`` breaks these limits, or None."""
        if self.minimum is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name} must be an integer"
            if not self.minimum <= value <= self.maximum:
                return f"{name} must be between {self.minimum} and {self.maximum}"
            return None
        if isinstance(value, str):
            if "\x00" in value:
                return f"{name} must not contain NUL characters"
            if self.required and not value.strip():
                return f"{name} is required"
            if self.max_length is not None and len(value) > self.max_length:
                return f"{name} must be at most {self.max_length} characters"
        return None


def required_name(value: str, field: str, max_length: int = 255) -> str:
    """A name a servicer requires, stripped: InvalidArgument (naming ``field``) when it
    is blank, holds NUL or is longer than ``max_length`` once stripped; the same
    rule and words as a field declaring ``required`` and ``max_length``."""
    value = value.strip()
    problem = Limits(required=True, max_length=max_length).violation(field, value)
    if problem:
        raise InvalidArgument(problem)
    return value


@functools.cache
def field_limits(field: FieldDescriptor) -> Limits | None:
    """The limits of a field: declared ones, and for integers always the type's range."""
    declared = (field.GetOptions().Extensions[options_pb2.limits]
                if field.GetOptions().HasExtension(options_pb2.limits) else None)
    bounds = _INT_BOUNDS.get(field.type)
    if bounds is not None:
        low, high = bounds
        if declared is not None:
            low = max(low, declared.min) if declared.HasField("min") else low
            high = min(high, declared.max) if declared.HasField("max") else high
        return Limits(minimum=low, maximum=high)
    if declared is None:
        return None
    return Limits(required=declared.required,
                  max_length=declared.max_length if declared.HasField("max_length") else None)


@functools.cache
def _checks(descriptor: Descriptor) -> tuple:
    """What to check in a message of this type: (field, limits) pairs of fields
    with declared limits, and the message fields whose types have some. Integer
    fields without declared limits need no check here: protobuf keeps them in
    their type's range."""
    own, nested = [], []
    for field in descriptor.fields:
        if field.GetOptions().HasExtension(options_pb2.limits):
            own.append((field, field_limits(field)))
        elif (field.message_type is not None and not field.message_type.GetOptions().map_entry
              and _checks(field.message_type) != ((), ())):
            nested.append(field)
    return tuple(own), tuple(nested)


def limit_violation(message: Message, prefix: str = "") -> str | None:
    """Why ``message`` breaks a declared limit of its contract, or None. A field
    with presence is checked only when set; a plain proto3 scalar always (its
    declared range includes 0 when 0 means "unset")."""
    own, nested = _checks(message.DESCRIPTOR)
    for field, limits in own:
        if field.has_presence and not field.is_repeated and not message.HasField(field.name):
            if limits.required and field.containing_oneof is None:
                return f"{prefix}{field.name} is required"
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            if limits.required and not value:
                return f"{prefix}{field.name} needs at least one item"
            for item in value:
                if (why := limits.violation(prefix + field.name, item)) is not None:
                    return why
            continue
        if field.type == FieldDescriptor.TYPE_ENUM:
            if limits.required and value == 0:
                return f"{prefix}{field.name} is required"
            continue
        if (why := limits.violation(prefix + field.name, value)) is not None:
            return why
    for field in nested:
        if field.is_repeated:
            for index, item in enumerate(getattr(message, field.name)):
                if (why := limit_violation(item, f"{prefix}{field.name}[{index}].")) is not None:
                    return why
        elif message.HasField(field.name):
            if (why := limit_violation(getattr(message, field.name), f"{prefix}{field.name}.")) is not None:
                return why
    return None
