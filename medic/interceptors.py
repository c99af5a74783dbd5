"""Cross-cutting work for every RPC, on the server and the client side.

Server side (``ServerInterceptor``, installed by ``medic.server`` on every
service), in this order for each call:

1. request id: taken from the ``x-request-id`` metadata or generated, kept in a
   context variable for the logs and for onward RPCs;
2. authorization: the *one* place where callers are checked. The interceptor
   looks up the RPC's required scope and rate-limit class in the contracts
   (``medic.contracts``) and hands them, with the call's metadata, to the
   process's ``Authorizer``. The identity it returns is available to servicers
   through ``current_identity()``, with the caller's ``x-medic-actor`` (the
   audit log's actor, ``clean_actor``). gRPC health and reflection bypass it; any
   other method that streams its responses is refused (UNIMPLEMENTED), since
   only unary responses are authorized here;
3. limits: a unary request that breaks a declared field limit of its contract
   (``contracts.limit_violation``) is refused with INVALID_ARGUMENT before the
   servicer runs, so no out-of-range value reaches a store;
4. error mapping: a ``MedicError`` becomes its status code and message (plus
   any trailing metadata it carries); any other exception is logged and
   becomes INTERNAL with a generic message;
5. metrics: count and latency by method and status code.

Client side (``ClientInterceptor`` / ``AioClientInterceptor``): adds the
request id and the process's credential metadata to every outgoing call.
"""
from __future__ import annotations

import contextvars
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import grpc
import grpc.aio
from google.protobuf.message import Message

from medic import contracts, metrics, tracing
from medic.errors import InvalidArgument, MedicError, PermissionDenied
from medic.logs import REQUEST_ID_HEADER, clean_request_id, new_request_id, request_id_var

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who is calling: an API key (``key:<id>``), a client IP (``ip:<addr>``) or a
    Medic service acting for one of them."""
    principal: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    name: str = ""
    # Who the caller says acts (``x-medic-actor``, the HTTP ``X-Actor``): a
    # label for the audit log, not a credential; "" when not given or unusable.
    actor: str = ""


# The caller's own name for who acts: any caller may send it (it grants
# nothing); the gateway passes its HTTP caller's X-Actor header on as this.
ACTOR_HEADER = "x-medic-actor"
MAX_ACTOR_LENGTH = 255


def clean_actor(value: str | None) -> str:
    """The actor a caller gave, or "" when it is missing, longer than 255
    characters or not printable (a control character could forge log lines or
    CSV rows): such a value is ignored, not refused."""
    if not value:
        return ""
    value = value.strip()
    if len(value) > MAX_ACTOR_LENGTH or not value.isprintable():
        return ""
    return value


ANONYMOUS = Identity(principal="anonymous")
_identity_var: contextvars.ContextVar[Identity] = contextvars.ContextVar("identity", default=ANONYMOUS)


def current_identity() -> Identity:
    return _identity_var.get()


class Authorizer(Protocol):
    """Decides whether a call may proceed. Raises ``Unauthenticated``,
    ``PermissionDenied`` or ``ResourceExhausted``; returns the caller's identity.
    ``metadata`` holds the call's metadata with lower-case keys."""

    def authorize(self, policy: contracts.MethodPolicy, metadata: dict[str, str],
                  peer: str) -> Identity: ...


def _abort(context: grpc.ServicerContext, err: MedicError) -> None:
    if err.trailers:
        context.set_trailing_metadata(err.trailers)
    context.abort(err.code, err.message)


_rpc_requests_of, _rpc_latency_of = metrics.labelled(metrics.RPC_REQUESTS), metrics.labelled(metrics.RPC_LATENCY)


class ServerInterceptor(grpc.ServerInterceptor):
    def __init__(self, service: str, authorizer: Authorizer):
        if authorizer is None:  # never run unauthenticated by omission
            raise TypeError("ServerInterceptor needs an authorizer")
        self.service = service
        self.authorizer = authorizer
        # method -> wrapped handler: the services' handlers never change once the
        # server runs, so each is wrapped once, not on every call. Unknown
        # methods (any string a client sends) are not kept. Being kept, what
        # ``continuation`` returns must not depend on the call: no interceptor
        # may come after this one.
        self._wrapped: dict[str, Any] = {}

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        public = contracts.is_public(method)
        policy = None if public else contracts.policy_for(method)
        short = method.rsplit("/", 1)[-1]
        answered, latency = _rpc_requests_of(self.service, short, "OK"), _rpc_latency_of(self.service, short)

        def run(behavior: Callable, request_or_iterator: Any, context: grpc.ServicerContext):
            metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())
                        if isinstance(v, str)}
            token = request_id_var.set(clean_request_id(metadata.get(REQUEST_ID_HEADER)))
            ident_token = None
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if not public:
                    if policy is None:
                        raise PermissionDenied(f"method {method} declares no scope")
                    identity = self.authorizer.authorize(policy, metadata, context.peer())
                    if ACTOR_HEADER in metadata:
                        identity = dataclasses.replace(identity, actor=clean_actor(metadata[ACTOR_HEADER]))
                    ident_token = _identity_var.set(identity)
                    if isinstance(request_or_iterator, Message):
                        why = contracts.limit_violation(request_or_iterator)
                        if why is not None:
                            raise InvalidArgument(why)
                return behavior(request_or_iterator, context)
            except MedicError as err:
                code = err.code
                if code == grpc.StatusCode.INTERNAL:
                    log.error("%s failed: %s", short, err.message)
                _abort(context, err)
            except Exception:
                # context.abort() raises a plain Exception after setting the code:
                # that one is an answer, not a failure.
                aborted = context.code()
                if aborted not in (None, grpc.StatusCode.OK):
                    code = aborted
                    raise
                code = grpc.StatusCode.INTERNAL
                log.exception("%s failed with an unexpected error", short)
                context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                elapsed = time.perf_counter() - started
                (answered if code is grpc.StatusCode.OK else _rpc_requests_of(self.service, short, code.name)).inc()
                latency.observe(elapsed)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s %s in %.1f ms", short, code.name, elapsed * 1000)
                if ident_token is not None:
                    _identity_var.reset(ident_token)
                request_id_var.reset(token)

        for inner, wrap in ((handler.unary_unary, grpc.unary_unary_rpc_method_handler),
                            (handler.stream_unary, grpc.stream_unary_rpc_method_handler)):
            if inner:
                return wrap(lambda request, ctx, inner=inner: run(inner, request, ctx),
                            request_deserializer=handler.request_deserializer,
                            response_serializer=handler.response_serializer)
        if public:
            return handler  # gRPC health's Watch and reflection stream their responses
        # No Medic RPC streams its responses, and ``run`` cannot authorize one: it
        # would have to hold the identity across the stream. Until it does, such a
        # method is refused rather than served unchecked.
        log.error("%s streams its responses; refusing it (the interceptor cannot authorize it)", method)

        def refuse(request_or_iterator: Any, context: grpc.ServicerContext):
            _rpc_requests_of(self.service, short, grpc.StatusCode.UNIMPLEMENTED.name).inc()
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{short} streams its responses, which Medic does not serve")

        factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
                   else grpc.stream_stream_rpc_method_handler)
        return factory(refuse, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)


# --- client side ------------------------------------------------------------

def outgoing_metadata(credential_metadata: tuple[tuple[str, str], ...],
                      existing: Any) -> list[tuple[str, str]]:
    md = list(existing or ())
    keys = {k for k, _ in md}
    if REQUEST_ID_HEADER not in keys:
        md.append((REQUEST_ID_HEADER, request_id_var.get() or new_request_id()))
    for key, value in credential_metadata:
        if key not in keys:
            md.append((key, value))
    return md


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base, metadata):
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class ClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Adds the request id and this process's credential to every call."""

    def __init__(self, credential_metadata: tuple[tuple[str, str], ...] = ()):
        self.credential_metadata = credential_metadata

    def _details(self, details):
        return _CallDetails(details, outgoing_metadata(self.credential_metadata, details.metadata))

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


class AioClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, credential_metadata: tuple[tuple[str, str], ...] = ()):
        self.credential_metadata = credential_metadata

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=client_call_details.timeout,
            metadata=grpc.aio.Metadata(*outgoing_metadata(
                self.credential_metadata, client_call_details.metadata)),
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


# Options of every channel between Medic processes. A name resolving to several
# replicas is balanced round-robin. gRPC's default reconnect backoff grows to
# 120 s, so a peer that was down for a minute could stay unreachable for two
# more after it came back; capped at 5 s, recovery follows the peer's return.
# gRPC shares connections ("subchannels") between a process's channels to one
# address: a new channel to a peer that restarted would inherit an older
# channel's failed connection and fail at once until its backoff ended, so each
# channel keeps its own.
CHANNEL_OPTIONS = (
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.keepalive_time_ms", 30_000),
)


def service_channel(target: str, credential_metadata: tuple[tuple[str, str], ...] = ()) -> grpc.Channel:
    """A channel to another Medic service carrying request ids and this process's credential
    (and, while tracing is on, the trace context)."""
    channel = tracing.traced_channel(grpc.insecure_channel(target, options=list(CHANNEL_OPTIONS)))
    return grpc.intercept_channel(channel, ClientInterceptor(credential_metadata))


def aio_service_channel(target: str, credential_metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.Channel:
    """``service_channel`` for ``grpc.aio`` (open it inside the running loop)."""
    return grpc.aio.insecure_channel(target, options=list(CHANNEL_OPTIONS),
                                     interceptors=[AioClientInterceptor(credential_metadata),
                                                   *tracing.aio_client_interceptors()])
