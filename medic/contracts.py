"""What the contracts say about each RPC, read from the proto descriptors.

Every RPC declares its required scope (and optionally its rate-limit class)
with a method option in its ``.proto`` file; ``policy_for`` returns both for a
full method name such as ``/medic.v1.HeartbeatService/RecordHeartbeat``.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass

import medic.v1
from medic import enums
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
