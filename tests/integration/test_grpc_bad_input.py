"""Bad input over gRPC never yields INTERNAL: every RPC of every service, called
by an admin with an empty request and with odd values in every field."""
from __future__ import annotations

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor

from medic import contracts

ODD_STRINGS = ["", " ", "x" * 5000, "\u0000nul", "ü🙂", "' OR 1=1 --", "../../etc/passwd"]
ODD_INTS = [0, -1, 2**31 - 1, -(2**31)]
ODD_INT64 = [0, -1, 2**63 - 1, -(2**63)]


def odd_requests(request_cls):
    """Requests with one odd value per field kind, for every variant."""
    descriptor = request_cls.DESCRIPTOR
    yield request_cls()
    for variant in range(len(ODD_STRINGS)):
        message = request_cls()
        for field in descriptor.fields:
            if field.is_repeated or field.message_type is not None:
                continue
            if field.type == FieldDescriptor.TYPE_STRING:
                setattr(message, field.name, ODD_STRINGS[variant])
            elif field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
                setattr(message, field.name, abs(ODD_INT64[variant % 4]) if field.type ==
                        FieldDescriptor.TYPE_UINT64 else ODD_INT64[variant % 4])
            elif field.type == FieldDescriptor.TYPE_INT32:
                setattr(message, field.name, ODD_INTS[variant % 4])
            elif field.type == FieldDescriptor.TYPE_BOOL:
                setattr(message, field.name, bool(variant % 2))
            elif field.type == FieldDescriptor.TYPE_ENUM:
                numbers = [v.number for v in field.enum_type.values]
                setattr(message, field.name, numbers[variant % len(numbers)])
        yield message


def rpcs():
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    for name in sorted(contracts.policies()):
        service, method = name.strip("/").split("/")
        yield name, pool.FindMethodByName(f"{service}.{method}")


@pytest.mark.parametrize("full_name, method", list(rpcs()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_rpc_answers_internal_to_bad_input(stack, full_name, method):
    backend = method.containing_service.name.removesuffix("Service").lower()
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    with grpc.insecure_channel(f"127.0.0.1:{stack.servers[backend].port}") as channel:
        call = channel.unary_unary(full_name, request_serializer=request_cls.SerializeToString,
                                   response_deserializer=response_cls.FromString)
        for request in odd_requests(request_cls):
            try:
                call(request, metadata=(("authorization", f"Bearer {stack.admin_key}"),), timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), \
                    (full_name, request, exc.code(), exc.details())
