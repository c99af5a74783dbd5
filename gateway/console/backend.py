"""How the console calls the Medic services: over gRPC, as ``/v2`` does.

A console request is authorized once at the edge (the gateway's authorizer:
the key is verified through the auth service's cache and counted once, a page
in the console rate-limit class, a form in management); each RPC it then makes is checked against the scope its
contract declares and carries the caller's identity, like every RPC the
gateway makes. Errors become ``ConsoleError`` with the HTTP status and a
message for people; an unavailable backend names itself, so a page can say
which part is missing and render the rest.
"""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory

from medic import contracts
from medic.authz import has_scope
from medic.errors import MedicError
from medic.interceptors import Identity
from gateway.http import HTTP_STATUS

# Authorizing a console request: a read RPC's contract (scope read, class management;
# pages swap in the console class, see web.Console).
ENTRY_RPC = "/medic.v1.HeartbeatService/GetService"

BACKEND_NAMES = {"auth": "auth service", "heartbeat": "heartbeat service", "routing": "routing service",
                 "delivery": "delivery service", "remediation": "remediation service"}


class ConsoleError(Exception):
    """An RPC or authorization failure, for people."""

    def __init__(self, status: int, message: str, *, backend: str = "", code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.backend = backend
        self.code = code

    @property
    def unavailable(self) -> bool:
        return self.status in (503, 504)

    @property
    def signed_out(self) -> bool:
        return self.status == 401


def from_medic_error(err: MedicError) -> ConsoleError:
    return ConsoleError(HTTP_STATUS.get(err.code, 500), err.message, code=err.code)


def from_rpc_error(exc: grpc.RpcError, backend: str) -> ConsoleError:
    code = exc.code()
    status = HTTP_STATUS.get(code, 500)
    name = BACKEND_NAMES.get(backend, backend)
    if status == 503:
        message = f"The {name} is unavailable."
    elif status == 504:
        message = f"The {name} did not answer in time."
    elif status == 500:
        message = f"The {name} failed (internal error)."
    else:
        message = exc.details() or code.name
    return ConsoleError(status, message, backend=backend, code=code)


def _method(full_method: str):
    contracts.policies()  # imports every generated module into the default pool
    service, method = full_method.strip("/").split("/")
    descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    return (message_factory.GetMessageClass(descriptor.input_type),
            message_factory.GetMessageClass(descriptor.output_type))


def backend_of(full_method: str) -> str:
    return full_method.strip("/").split("/")[0].removeprefix("medic.v1.").removesuffix("Service").lower()


@dataclass
class CallLog:
    """The RPCs one console request made, by page section (for Server-Timing,
    which the bench reads to hold each section to its RPC budget)."""
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    started: float = field(default_factory=time.perf_counter)

    def header(self) -> str:
        total = (time.perf_counter() - self.started) * 1000
        parts = [f"render;dur={total:.1f}"]
        parts += [f'rpc-{name};desc="{count}"' for name, count in sorted(self.counts.items())]
        return ", ".join(parts)


class Backend:
    """The RPCs of one console request, made as ``identity``."""

    def __init__(self, gw, identity: Identity, metadata: tuple[tuple[str, str], ...], log: CallLog):
        self.gw = gw
        self.identity = identity
        self.metadata = metadata
        self.log = log

    def allowed(self, scope: str) -> bool:
        return has_scope(self.identity.scopes, scope)

    async def call(self, rpc: str, section: str = "page", request: Any = None, /, **fields: Any):
        """Calls ``rpc`` ("HeartbeatService/ListAlerts") with ``request``, or one built from ``fields``."""
        full_method = "/medic.v1." + rpc
        policy = contracts.policy_for(full_method)
        if not has_scope(self.identity.scopes, policy.scope_name):
            raise ConsoleError(403, f"Your key lacks the `{policy.scope_name}` scope this needs.",
                               code=grpc.StatusCode.PERMISSION_DENIED)
        request_cls, response_cls = _method(full_method)
        backend = backend_of(full_method)
        call = self.gw.channels[backend].unary_unary(
            full_method, request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString)
        self.log.counts[section] += 1
        try:
            return await call(request if request is not None else request_cls(**fields), metadata=self.metadata,
                              timeout=self.gw.rpc_timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, backend) from None


@dataclass
class Part:
    """One section's data, or why it is missing."""
    value: Any = None
    error: ConsoleError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def parts(**loaders) -> dict[str, Part]:
    """Runs each section's loader concurrently; a failure stays in its section."""
    names = list(loaders)
    results = await asyncio.gather(*loaders.values(), return_exceptions=True)
    out = {}
    for name, result in zip(names, results):
        if isinstance(result, ConsoleError):
            out[name] = Part(error=result)
        elif isinstance(result, BaseException):
            raise result
        else:
            out[name] = Part(value=result)
    return out
