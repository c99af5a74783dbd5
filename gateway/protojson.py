"""JSON <-> protobuf for the ``/v2`` management API, driven by the message
descriptors, so the HTTP shapes follow the contracts without hand-written
mapping code.

JSON conventions: field names as in the .proto; int64 as JSON numbers; enums as
their strings in ``medic.enums`` (the lower-case value name without the enum's
prefix: ``TARGET_TYPE_SLACK`` -> ``"slack"``, ``SCOPE_ADMIN`` -> ``"admin"``); timestamps as RFC 3339 strings;
``google.protobuf.Struct`` as a JSON object; unset optional fields as null.
Unknown fields and wrong types are refused with a message naming the field, and
so are integers outside the field's range (its declared ``limits``, else its
type's): never a ``ValueError`` from protobuf.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from medic import contracts
from gateway.http import HttpError, is_int, is_number
from medic import enums

# A required string: some character that is not white space, and no NUL.
NOT_BLANK = "^[^\\u0000]*\\S[^\\u0000]*$"
NO_NUL = "^[^\\u0000]*$"

_INT_TYPES = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
              FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
              FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64}
_FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}


def enum_to_json(enum: EnumDescriptor, number: int) -> str | None:
    return enums.strings(enum).names.get(number)


def enum_choices(enum: EnumDescriptor) -> list[str]:
    return list(enums.strings(enum).choices)


def _enum_from_json(field: FieldDescriptor, value: Any, path: str) -> int:
    if isinstance(value, str):
        name = enums.prefix(field.enum_type) + value.strip().upper()
        found = field.enum_type.values_by_name.get(name)
        if found is not None and found.number != 0:
            return found.number
    raise HttpError(400, f"Field `{path}` must be one of {', '.join(enum_choices(field.enum_type))}.")


def _timestamp_from_json(value: Any, path: str) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            ts.FromDatetime(parsed)
            return ts
        except ValueError:
            pass
    raise HttpError(400, f"Field `{path}` must be an RFC 3339 time, e.g. 2026-12-31T23:59:59Z.")


def _scalar_from_json(field: FieldDescriptor, value: Any, path: str) -> Any:
    kind = field.type
    if kind in _INT_TYPES:
        if not is_int(value):
            raise HttpError(400, f"Field `{path}` must be an integer.")
        limits = contracts.field_limits(field)
        if not limits.minimum <= value <= limits.maximum:
            raise HttpError(400, f"Field `{path}` must be between {limits.minimum} and {limits.maximum}.")
        return value
    if kind in _FLOAT_TYPES:
        if not is_number(value):
            raise HttpError(400, f"Field `{path}` must be a number.")
        return float(value)
    if kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise HttpError(400, f"Field `{path}` must be true or false.")
        return value
    if kind == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise HttpError(400, f"Field `{path}` must be a string.")
        return value
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enum_from_json(field, value, path)
    raise HttpError(400, f"Field `{path}` cannot be set over HTTP.")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _map_wrapper(field: FieldDescriptor) -> FieldDescriptor | None:
    """The map inside a message that only wraps one (e.g. WebhookHeaders{values}),
    used to tell "not given" from "empty"; JSON gives the map directly."""
    inner = field.message_type
    if inner is None or inner.full_name.startswith("google.protobuf."):
        return None
    if len(inner.fields) == 1 and _is_map(inner.fields[0]):
        return inner.fields[0]
    return None


def _fill_map(target, field: FieldDescriptor, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise HttpError(400, f"Field `{path}` must be a JSON object.")
    value_field = field.message_type.fields_by_name["value"]
    for key, item in value.items():
        target[key] = _scalar_from_json(value_field, item, f"{path}.{key}")


def fill(message: Message, data: dict[str, Any], prefix: str = "") -> Message:
    """Sets ``message``'s fields from a JSON object; null means "not given"."""
    fields = message.DESCRIPTOR.fields_by_name
    unknown = sorted(k for k in data if k not in fields)
    if unknown:
        raise HttpError(400, f"Unknown field(s): {', '.join(prefix + k for k in unknown)}.")
    for name, value in data.items():
        if value is None:
            continue
        field = fields[name]
        path = prefix + name
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct":
            if not isinstance(value, dict):
                raise HttpError(400, f"Field `{path}` must be a JSON object.")
            getattr(message, name).SetInParent()  # present even when empty
            getattr(message, name).update(value)
        elif _is_map(field):
            _fill_map(getattr(message, name), field, value, path)
        elif _map_wrapper(field) is not None:
            wrapper = getattr(message, name)
            wrapper.SetInParent()
            inner = _map_wrapper(field)
            _fill_map(getattr(wrapper, inner.name), inner, value, path)
        elif field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
            getattr(message, name).CopyFrom(_timestamp_from_json(value, path))
        elif field.is_repeated:
            if not isinstance(value, list):
                raise HttpError(400, f"Field `{path}` must be a list.")
            target = getattr(message, name)
            for index, item in enumerate(value):
                if field.message_type is not None:
                    if not isinstance(item, dict):
                        raise HttpError(400, f"Field `{path}[{index}]` must be an object.")
                    fill(target.add(), item, f"{path}[{index}].")
                else:
                    target.append(_scalar_from_json(field, item, f"{path}[{index}]"))
        elif field.message_type is not None:
            if not isinstance(value, dict):
                raise HttpError(400, f"Field `{path}` must be an object.")
            fill(getattr(message, name), value, path + ".")
        else:
            setattr(message, name, _scalar_from_json(field, value, path))
    return message


def _value_to_json(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        full = field.message_type.full_name
        if full == "google.protobuf.Timestamp":
            return value.ToDatetime(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")
        if full == "google.protobuf.Struct":
            return json_format.MessageToDict(value)
        return to_json(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_to_json(field.enum_type, value)
    return value


def to_json(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value_to_json(value_field, v) for k, v in value.items()}
        elif _map_wrapper(field) is not None:
            present = message.HasField(field.name)
            out[field.name] = dict(getattr(value, _map_wrapper(field).name)) if present else None
        elif field.is_repeated:
            out[field.name] = [_value_to_json(field, v) for v in value]
        elif field.has_presence and not message.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _value_to_json(field, value)
    return out


# --- OpenAPI schemas from descriptors ------------------------------------------

def json_schema(descriptor: Descriptor, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    properties, required = {}, []
    for field in descriptor.fields:
        if field.name in exclude:
            continue
        properties[field.name] = field_schema(field)
        limits = contracts.field_limits(field)
        # A field that must be given: a required one outside a oneof and not
        # `optional` (those are checked only when given), or an integer whose
        # range leaves out 0, the value of a missing one.
        if field.containing_oneof is None and not (field.has_presence and field.message_type is None):
            if (limits is not None and limits.required) or (
                    limits is not None and limits.minimum is not None and not field.is_repeated
                    and not limits.minimum <= 0 <= limits.maximum):
                required.append(field.name)
    for name, prop in properties.items():
        if name not in required:  # null: "not given"
            prop["nullable"] = True
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _limited(item: dict[str, Any], field: FieldDescriptor) -> dict[str, Any]:
    """``item`` (the schema of one value of ``field``) with the field's limits."""
    limits = contracts.field_limits(field)
    if limits is None:
        return item
    if limits.minimum is not None:
        return {**item, "minimum": limits.minimum, "maximum": limits.maximum}
    if item.get("type") != "string":
        return item
    item = dict(item)
    if limits.required:
        item["minLength"], item["pattern"] = 1, NOT_BLANK
    else:
        item["pattern"] = NO_NUL
    if limits.max_length is not None:
        item["maxLength"] = limits.max_length
    return item


def field_schema(field: FieldDescriptor) -> dict[str, Any]:
    if _is_map(field) or _map_wrapper(field) is not None:
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if field.message_type is not None:
        full = field.message_type.full_name
        if full == "google.protobuf.Timestamp":
            item = {"type": "string", "format": "date-time"}
        elif full == "google.protobuf.Struct":
            item = {"type": "object"}
        else:
            item = json_schema(field.message_type)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        item = {"type": "string", "enum": enum_choices(field.enum_type)}
    elif field.type in _INT_TYPES:
        item = {"type": "integer"}
    elif field.type in _FLOAT_TYPES:
        item = {"type": "number"}
    elif field.type == FieldDescriptor.TYPE_BOOL:
        item = {"type": "boolean"}
    else:
        item = {"type": "string"}
    item = _limited(item, field)
    if field.is_repeated:
        limits = contracts.field_limits(field)
        return {"type": "array", "items": item, **({"minItems": 1} if limits and limits.required else {})}
    return item

