"""HTTP plumbing of the gateway: the legacy envelope, body parsing with a size
limit, field type checks, and gRPC status -> HTTP status mapping.

Every response body is ``{"success": bool, "message": str, "results": ...}``;
bad input gets a 4xx in that envelope, never a 500 or a stack trace.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import grpc
import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import Response

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class HttpError(Exception):
    """Ends a request with ``status`` and the envelope; ``extra`` adds top-level keys."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def envelope(success: bool, message: str = "", results: Any = "", status: int = 200,
             headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> Response:
    body = {"success": success, "message": message, "results": results}
    if extra:
        body.update(extra)
    return Response(orjson.dumps(body), status_code=status, headers=dict(headers or {}),
                    media_type="application/json")


def ok(results: Any = "", message: str = "", status: int = 200) -> Response:
    return envelope(True, message, results, status)


def error_response(err: HttpError) -> Response:
    return envelope(False, err.message, "", err.status, err.headers, err.extra)


def from_rpc_error(exc: grpc.RpcError) -> HttpError:
    code = exc.code()
    status = HTTP_STATUS.get(code, 500)
    if status == 503:
        message = "A Medic service is unavailable; try again shortly."
    elif status == 504:
        message = "A Medic service did not answer in time; try again shortly."
    elif status == 500:
        message = "Internal error."
    else:
        message = exc.details() or code.name
    return HttpError(status, message)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's body; 413 past ``max_bytes`` (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise HttpError(413, f"Request body is larger than {max_bytes} bytes.")
        except ValueError:
            raise HttpError(400, "Invalid Content-Length header.") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HttpError(413, f"Request body is larger than {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int, *, required: bool = True,
                    big_integers: bool = False) -> dict[str, Any]:
    """The request's JSON object. 413 past ``max_bytes``; 400 when malformed or not an object.
    ``big_integers``: integers beyond 64 bits are read (to be refused by a field check
    naming the field) instead of making the body invalid JSON."""
    raw = await read_body(request, max_bytes)
    if not raw.strip():
        if required:
            raise HttpError(400, "A JSON object is required in the request body.")
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if not big_integers:
            raise HttpError(400, "The request body is not valid JSON.") from None
        data = _loads_big_integers(raw)
    if not isinstance(data, dict):
        raise HttpError(400, "The request body must be a JSON object.")
    return data


def _loads_big_integers(raw: bytes) -> Any:
    """The stdlib parser, which reads integers of any size (orjson stops at 64 bits)."""
    def no_constant(name: str):
        raise ValueError(name)
    try:
        return json.loads(raw, parse_constant=no_constant)
    except (ValueError, RecursionError):
        raise HttpError(400, "The request body is not valid JSON.") from None


# --- field checks (shape only; the services own the domain rules) ---------------

def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_INTEGER = re.compile("-?[0-9]+")


def parse_query_int(raw: str, name: str) -> int:
    """An integer query parameter as the OpenAPI document's ``integer`` says: digits,
    maybe a minus; an empty value is no integer (absent is "not given")."""
    if _INTEGER.fullmatch(raw) is None:
        raise HttpError(400, f"Invalid '{name}' parameter")
    return int(raw)


def query_int(request: Request, name: str, *, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = parse_query_int(raw, name)
    if value < minimum:
        raise HttpError(400, f"Invalid '{name}' parameter")
    return value


def link_next_page(response: Response, request: Request, has_more: bool, offset: int,
                   count: int) -> Response:
    """A list answered one page at a time says so: when another page follows,
    an RFC 8288 ``Link: <same query, offset moved on>; rel="next"`` header."""
    if has_more:
        url = request.url.include_query_params(offset=offset + count)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return response


def iso(ts: Timestamp | None, present: bool = True) -> str | None:
    if ts is None or not present:
        return None
    return ts.ToDatetime(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")
