"""The HTTP gateway: a thin HTTP -> gRPC translator for legacy clients.

It holds no SQL and no domain rule. Each route names the RPC it calls; the
one ``endpoint`` wrapper around every route is the gateway's middleware: it
sets the request id, asks the ``HttpAuthorizer`` (scope and rate-limit class
come from that RPC's contract), maps errors to the envelope and records
metrics. Paths without an RPC (health, metrics, docs) bypass authorization.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import grpc.aio
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from medic import contracts, tracing
from medic.config import GRPC_SERVICES, Settings
from medic.errors import MedicError
from medic.interceptors import ACTOR_HEADER, ANONYMOUS, Identity, aio_service_channel, clean_actor
from medic.logs import REQUEST_ID_HEADER, clean_request_id, request_id_var
from medic.metrics import labelled
from medic.v1 import heartbeat_pb2_grpc
from gateway import console, docs, health, history, legacy, remediation, v2, v2_routes
from gateway.batcher import HeartbeatBatcher
from gateway.http import HTTP_STATUS, HttpError, envelope, error_response, from_rpc_error

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("medic_http_requests_total", "HTTP requests served by the gateway",
                        ["route", "method", "status"])
HTTP_LATENCY = Histogram("medic_http_request_duration_seconds", "Time to serve an HTTP request",
                         ["route", "method"],
                         buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))

requests_of, latency_of = labelled(HTTP_REQUESTS), labelled(HTTP_LATENCY)

# The Medic services the gateway calls, and so reports in /health.
BACKENDS = GRPC_SERVICES


@dataclass
class Decision:
    """What the authorizer decided for one HTTP request."""
    identity: Identity = ANONYMOUS
    # Object with limit, remaining, reset (unix seconds) when the request was rate limited.
    rate_limit: Any = None
    # Metadata the gateway attaches to the onward RPC (the propagated identity).
    metadata: tuple[tuple[str, str], ...] = ()


class HttpAuthorizer(Protocol):
    async def authorize(self, policy: contracts.MethodPolicy, headers: Mapping[str, str],
                        client_ip: str) -> Decision: ...


@dataclass
class Gateway:
    settings: Settings
    authorizer: HttpAuthorizer
    # Metadata every onward RPC carries (this process's service credential).
    credential_metadata: tuple[tuple[str, str], ...] = ()
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    heartbeat: heartbeat_pb2_grpc.HeartbeatServiceStub | None = None
    batcher: HeartbeatBatcher | None = None

    @property
    def rpc_timeout(self) -> float:
        return self.settings.rpc_timeout_seconds

    async def open(self) -> None:
        for name in BACKENDS:
            self.channels[name] = aio_service_channel(self.settings.target(name), self.credential_metadata)
        self.heartbeat = heartbeat_pb2_grpc.HeartbeatServiceStub(self.channels["heartbeat"])
        self.batcher = HeartbeatBatcher(self._send_heartbeats, max_batch=self.settings.ingest_batch_max)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(grace=1)

    async def _send_heartbeats(self, items):
        from medic.v1 import heartbeat_pb2
        return await self.heartbeat.RecordHeartbeats(
            heartbeat_pb2.RecordHeartbeatsRequest(heartbeats=items, outcomes_only=True),
            timeout=self.rpc_timeout)

    def endpoint(self, route: str, rpc: str | None,
                 handler: Callable[[Request, Decision], Awaitable[Response]]):
        """Wraps a route handler with request id, authorization, error mapping and metrics."""
        policy = contracts.policy_for(rpc) if rpc else None
        if rpc and policy is None:
            raise RuntimeError(f"route {route} names unknown RPC {rpc}")

        async def wrapped(request: Request) -> Response:
            request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER))
            token = request_id_var.set(request_id)
            traced = tracing.start_http(request.headers, request.method, route)
            started = time.perf_counter()
            decision = None
            try:
                if policy is not None:
                    client_ip = request.client.host if request.client else ""
                    decision = await self.authorizer.authorize(policy, request.headers, client_ip)
                    actor = clean_actor(request.headers.get("x-actor"))
                    if actor:  # the caller's own name for who acts, for the audit log
                        decision = dataclasses.replace(
                            decision, metadata=(*decision.metadata, (ACTOR_HEADER, actor)))
                response = await handler(request, decision or Decision())
            except HttpError as err:
                response = error_response(err)
            except MedicError as err:
                response = error_response(http_error_from_medic(err))
            except grpc.RpcError as exc:
                response = error_response(from_rpc_error(exc))
            except Exception:
                log.exception("unexpected error serving %s %s", request.method, route)
                response = envelope(False, "Internal error.", "", 500)
            finally:
                request_id_var.reset(token)
            if decision is not None and decision.rate_limit is not None:
                response.headers.update(rate_limit_headers(decision.rate_limit))
            response.headers[REQUEST_ID_HEADER] = request_id
            requests_of(route, request.method, str(response.status_code)).inc()
            latency_of(route, request.method).observe(time.perf_counter() - started)
            tracing.end_http(traced, response.status_code)
            return response

        return wrapped

    def route(self, method: str, path: str, rpc: str | None,
              handler: Callable[[Request, Decision], Awaitable[Response]]) -> Route:
        """The route of ``method path``, its handler wrapped by ``endpoint``."""
        return Route(path, self.endpoint(path, rpc, handler), methods=[method])

    def md(self, decision: Decision) -> tuple[tuple[str, str], ...]:
        return decision.metadata


def rate_limit_headers(status: Any) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(status.limit),
            "X-RateLimit-Remaining": str(max(status.remaining, 0)),
            "X-RateLimit-Reset": str(int(status.reset))}


def http_error_from_medic(err: MedicError) -> HttpError:
    status = HTTP_STATUS.get(err.code, 500)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for key, value in err.trailers:
        if key.lower() == "retry-after":
            headers["Retry-After"] = value
            extra["retry_after"] = int(float(value))
        elif key.lower().startswith("x-ratelimit-"):
            headers["-".join(p.capitalize() for p in key.split("-")).replace("Ratelimit", "RateLimit")] = value
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    message = err.message if status != 500 else "Internal error."
    return HttpError(status, message, headers=headers, extra=extra)


def create_app(settings: Settings, *, authorizer: HttpAuthorizer,
               credential_metadata: tuple[tuple[str, str], ...] = ()) -> Starlette:
    if authorizer is None:  # never serve unauthenticated by omission
        raise TypeError("create_app needs an authorizer")
    gw = Gateway(settings=settings, authorizer=authorizer, credential_metadata=credential_metadata)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await gw.open()
        try:
            yield
        finally:
            await gw.close()

    routes = [
        *legacy.routes(gw),
        *v2.build_routes(gw, v2_routes.TABLE),
        *history.routes(gw),
        *remediation.routes(gw),
        *health.routes(gw),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *docs.routes(),
        *console.routes(gw),
    ]
    app = GatewayApp(routes=routes, lifespan=lifespan,
                     exception_handlers={404: not_found, 405: method_not_allowed})
    app.state.gateway = gw
    app.heartbeat_endpoint = next(route.endpoint for route in routes if isinstance(route, Route)
                                  and route.path == "/heartbeat" and "POST" in (route.methods or ()))
    return app


class GatewayApp(Starlette):
    """Starlette, with ``POST /heartbeat`` (the hot path) served straight by its
    endpoint: the same ``Gateway.endpoint`` wrapper as the route table's (request
    id, authorization, error mapping, metrics), without the middleware stack and
    route matching around it, which cost ~10 % of the gateway's CPU per heartbeat."""

    heartbeat_endpoint: Callable[[Request], Awaitable[Response]] | None = None

    async def __call__(self, scope, receive, send) -> None:
        if (self.heartbeat_endpoint is not None and scope["type"] == "http"
                and scope["path"] == "/heartbeat" and scope["method"] == "POST"):
            scope["app"] = self
            response = await self.heartbeat_endpoint(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def not_found(request: Request, exc: Exception) -> Response:
    return envelope(False, f"No route for {request.url.path}.", "", 404)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    # RFC 9110: a 405 lists the methods the path does allow.
    allowed = sorted({method for route in request.app.routes if isinstance(route, Route) and route.methods
                      and route.matches(request.scope)[0] != Match.NONE for method in route.methods})
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return envelope(False, f"Method {request.method} is not allowed on {request.url.path}.", "", 405,
                    headers)


def serve(settings: Settings) -> int:
    """Runs the gateway until SIGTERM/SIGINT (uvicorn handles both gracefully)."""
    import uvicorn

    from medic import authz

    app = create_app(settings, authorizer=authz.AsyncKeyAuthorizer(settings),
                     credential_metadata=authz.service_credential_metadata(settings))
    config = uvicorn.Config(app, host=settings.host, port=settings.gateway_port, loop="uvloop",
                            http="httptools", log_config=None, access_log=False,
                            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
                            backlog=2048)
    log.info("gateway serving HTTP on %s:%d", settings.host, settings.gateway_port)
    # Server.run() builds the loop from config.loop (uvloop); asyncio.run(serve())
    # would run the pure-Python asyncio loop, whose selector and transports cost
    # a fifth of the gateway's CPU under load.
    uvicorn.Server(config).run()
    tracing.shutdown()
    return 0
