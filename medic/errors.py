"""Typed errors raised inside services and mapped to gRPC status codes at the edge.

A store raises ``NotFound`` or ``Conflict``; the shared interceptor turns any
``MedicError`` into its status code with its message, and anything else into
INTERNAL without leaking the exception text.
"""
from __future__ import annotations

import grpc


class MedicError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, trailers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.message = message
        # Extra trailing metadata for the caller (e.g. rate-limit figures).
        self.trailers = trailers


class InvalidArgument(MedicError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class MissingReference(InvalidArgument):
    """A row refers to another that does not exist (a foreign-key violation)."""

    def __init__(self, message: str, column: str = "", value: str = ""):
        super().__init__(message)
        self.column = column
        self.value = value


class NotFound(MedicError):
    code = grpc.StatusCode.NOT_FOUND


class Conflict(MedicError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(MedicError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(MedicError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(MedicError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(MedicError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(MedicError):
    """A dependency (PostgreSQL, another service, Redis) cannot be reached."""
    code = grpc.StatusCode.UNAVAILABLE
