"""The ``/v2`` management API: each route is one RPC, declared in a table.

A route names its RPC; the request message is filled from the path
parameters, the query string and the JSON body (``gateway.protojson``), and
the response (or one of its fields) becomes ``results``. Scope and rate-limit
class come from the RPC's contract through the shared endpoint wrapper, and
the OpenAPI document is generated from the same table and descriptors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medic import contracts
from gateway import protojson
from gateway.http import HttpError, link_next_page, ok, parse_query_int, read_json


@dataclass(frozen=True)
class RpcRoute:
    method: str          # HTTP method
    path: str            # Starlette path; {name} / {name:int} are request fields of that name
    rpc: str             # "medic.v1.RoutingService/CreateTeam"
    summary: str
    body: bool = False   # the JSON body fills the request
    body_field: str | None = None  # ... or only this message field of it
    query: tuple[str, ...] = ()  # query parameters that fill request fields
    status: int = 200
    result: str | None = None    # response field returned as `results`; None: the whole response
    message: str = ""

    @property
    def full_method(self) -> str:
        return "/" + self.rpc

    @property
    def backend(self) -> str:
        service = self.rpc.split("/")[0]
        return service.removeprefix("medic.v1.").removesuffix("Service").lower()

    def descriptor(self):
        contracts.policies()  # imports every generated module into the default pool
        service, method = self.rpc.split("/")
        return descriptor_pool.Default().FindMethodByName(f"{service}.{method}")

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)


def _query_value(field: FieldDescriptor, raw: str, name: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.strip().lower()
        if lowered in ("1", "true"):
            return True
        if lowered in ("0", "false"):
            return False
        raise HttpError(400, f"Invalid '{name}' parameter")
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        return parse_query_int(raw, name)
    return raw


def build_routes(gw, table: list[RpcRoute]) -> list[Route]:
    routes = []
    for spec in table:
        method = spec.descriptor()
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        routes.append(gw.route(spec.method, spec.path, spec.full_method,
                               _handler(gw, spec, request_cls, response_cls)))
    return routes


def _handler(gw, spec: RpcRoute, request_cls, response_cls):
    call = None
    # A list answered a page at a time (offset in, has_more out).
    paged = "offset" in spec.query and "has_more" in response_cls.DESCRIPTOR.fields_by_name

    async def handler(request: Request, decision) -> Response:
        nonlocal call
        if call is None:  # channels exist only once the app has started
            call = gw.channels[spec.backend].unary_unary(
                spec.full_method, request_serializer=request_cls.SerializeToString,
                response_deserializer=response_cls.FromString)
        message = request_cls()
        data: dict[str, Any] = {}
        if spec.body:
            data.update(await read_json(request, gw.settings.max_body_bytes,
                                        required=spec.method == "POST"))
        clash = set(data) & set(spec.path_params)
        if clash and spec.body_field is None:
            raise HttpError(400, f"Field(s) {', '.join(sorted(clash))} belong in the path.")
        if spec.body_field is not None:
            protojson.fill(getattr(message, spec.body_field), data)
            getattr(message, spec.body_field).SetInParent()
        else:
            protojson.fill(message, data)
        fields = request_cls.DESCRIPTOR.fields_by_name
        for name in spec.query:
            raw = request.query_params.get(name)
            # An empty string filter is "any"; an empty number, flag or choice is no value.
            if raw is not None and (raw != "" or fields[name].type != FieldDescriptor.TYPE_STRING):
                protojson.fill(message, {name: _query_value(fields[name], raw, name)})
        for name in spec.path_params:
            value = request.path_params[name]
            limits = contracts.field_limits(fields[name])
            if isinstance(value, int) and not limits.minimum <= value <= limits.maximum:
                # No such thing can exist: answered as an unknown id is.
                raise HttpError(404, f"No {name.removesuffix('_id')} with id {value}.")
            setattr(message, name, value)
        response = await call(message, metadata=gw.md(decision), timeout=gw.rpc_timeout)
        if spec.result is None:
            results = protojson.to_json(response)
        elif response_cls.DESCRIPTOR.fields_by_name[spec.result].is_repeated:
            results = [protojson.to_json(v) for v in getattr(response, spec.result)]
            if paged:
                return link_next_page(ok(results, spec.message, spec.status), request,
                                      response.has_more, message.offset, len(results))
        else:
            results = protojson.to_json(getattr(response, spec.result))
        return ok(results, spec.message, spec.status)

    return handler


# The header of a list answered a page at a time (gateway.http.link_next_page),
# and the parameter that follows it.
NEXT_PAGE = {"Link": {"description": 'When more items follow: `<this query with offset moved on>; rel="next"`',
                      "schema": {"type": "string"}}}
OFFSET_NOTE = "Items to pass over (paging; follow the `Link` header's rel=\"next\")"


def _path_schema(spec: RpcRoute, field: FieldDescriptor) -> dict[str, Any]:
    schema = protojson.field_schema(field)
    if f"{{{field.name}:int}}" in spec.path:  # the route matches digits only
        schema["minimum"] = max(schema["minimum"], 0)
    return schema


def openapi_paths(table: list[RpcRoute], errors: dict[int, str]) -> dict[str, Any]:
    """The routes' operations; ``errors``: the error statuses every operation may answer."""
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    paths: dict[str, Any] = {}
    for spec in table:
        method = spec.descriptor()
        policy = contracts.policy_for(spec.full_method)
        path = spec.path.replace(":int}", "}")
        answers = {spec.status: spec.message or "OK", **errors, 404: "Not found"}
        if any(e in (spec.rpc.split("/")[1]) for e in ("Create", "Update")):
            answers[409] = "Conflicts with an existing one (e.g. a name taken)"
        operation: dict[str, Any] = {
            "summary": spec.summary, "tags": [spec.backend],
            "description": f"Calls `{spec.rpc}`; needs the `{policy.scope_name}` scope.",
            "parameters": [{"name": p, "in": "path", "required": True,
                            "schema": _path_schema(spec, method.input_type.fields_by_name[p])}
                           for p in spec.path_params],
            "responses": {str(code): {"description": text, "content": envelope} for code, text in answers.items()},
        }
        if "offset" in spec.query:
            operation["responses"][str(spec.status)]["headers"] = NEXT_PAGE
        fields = method.input_type.fields_by_name
        for name in spec.query:
            operation["parameters"].append({"name": name, "in": "query", "required": False,
                                             "schema": protojson.field_schema(fields[name])})
            if name == "offset":
                operation["parameters"][-1]["description"] = OFFSET_NOTE
        if spec.body:
            body_type = (method.input_type.fields_by_name[spec.body_field].message_type
                         if spec.body_field else method.input_type)
            operation["requestBody"] = {"required": spec.method == "POST", "content": {"application/json": {
                "schema": protojson.json_schema(body_type, frozenset(spec.path_params))}}}
        paths.setdefault(path, {})[spec.method.lower()] = operation
    return paths
