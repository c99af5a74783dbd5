"""Server bootstrap shared by every service process.

A service package provides a ``Component`` (its servicers, the dependencies it
needs to be ready, background work to start and stop). ``create_server`` turns
it into a gRPC server with the shared interceptor, standard health
(``grpc.health.v1``) and reflection; ``run`` adds the Prometheus port, the
readiness loop and graceful shutdown on SIGTERM/SIGINT (stop accepting, let
in-flight RPCs finish within the grace period, stop background work, exit).

Health names: ``""`` and each gRPC service's full name report whether the
process can serve (every dependency answers); ``medic.dependency.<name>``
reports one dependency (e.g. ``medic.dependency.database``), so the gateway's
readiness can say which dependency is down. ``medic.liveness`` is SERVING from
start to shutdown whatever the dependencies say: a liveness probe that asks it
restarts a process that stopped serving, never one whose database is down.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from medic import metrics, tracing
from medic.interceptors import Authorizer, ServerInterceptor

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEPENDENCY_HEALTH_PREFIX = "medic.dependency."
LIVENESS_HEALTH_SERVICE = "medic.liveness"


@dataclass
class Component:
    name: str
    # (add_XxxServicer_to_server, servicer, full gRPC service name)
    servicers: list[tuple[Callable, object, str]]
    # dependency name -> check returning True when it answers
    readiness: dict[str, Callable[[], bool]] = field(default_factory=dict)
    on_start: list[Callable[[], None]] = field(default_factory=list)
    # each gets the remaining grace period in seconds
    on_stop: list[Callable[[float], None]] = field(default_factory=list)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    component: Component
    _stopped: threading.Event = field(default_factory=threading.Event)
    _readiness_thread: threading.Thread | None = None

    def check_readiness(self) -> bool:
        ready = True
        for dependency, check in self.component.readiness.items():
            try:
                ok = bool(check())
            except Exception:  # a failing check means "not ready", never a crash
                log.exception("readiness check %s raised", dependency)
                ok = False
            metrics.DEPENDENCY_UP.labels(dependency).set(1 if ok else 0)
            self.health.set(DEPENDENCY_HEALTH_PREFIX + dependency, SERVING if ok else NOT_SERVING)
            ready = ready and ok
        status = SERVING if ready else NOT_SERVING
        self.health.set("", status)
        for _add, _servicer, full_name in self.component.servicers:
            self.health.set(full_name, status)
        return ready

    def start_readiness_loop(self, interval: float = 1.0) -> None:
        previous = [None]

        def loop():
            while not self._stopped.wait(interval):
                ready = self.check_readiness()
                if ready != previous[0]:
                    log.info("%s is %s", self.component.name, "ready" if ready else "NOT ready")
                    previous[0] = ready

        self.check_readiness()
        self._readiness_thread = threading.Thread(target=loop, name="readiness", daemon=True)
        self._readiness_thread.start()

    def stop(self, grace: float) -> None:
        """Stops accepting RPCs, lets in-flight ones finish, then stops background work."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        done = self.server.stop(grace)
        done.wait(grace + 1)
        for stop in self.component.on_stop:
            try:
                stop(grace)
            except Exception:
                log.exception("error while stopping %s", self.component.name)


def create_server(component: Component, *, authorizer: Authorizer, host: str = "127.0.0.1",
                  port: int = 0, workers: int = 32) -> RunningServer:
    """Builds and starts a gRPC server for the component, its callers checked by
    ``authorizer`` (there is no default: a process never allows every caller by
    omission); port 0 picks a free port.
    ``ServerInterceptor`` is its last interceptor (it keeps each method's handler);
    only tracing's, when on, comes before it."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{component.name}-rpc"),
        interceptors=(*tracing.server_interceptors(), ServerInterceptor(component.name, authorizer)),
        options=[("grpc.so_reuseport", 0),
                 # Clients reconnect (and re-resolve a name listing every replica) at least
                 # every 5 minutes, so replicas added later get their share of calls.
                 ("grpc.max_connection_age_ms", 300_000),
                 ("grpc.max_connection_age_grace_ms", 30_000)],
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_servicer.set(LIVENESS_HEALTH_SERVICE, SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    for add, servicer, full_name in component.servicers:
        add(servicer, server)
        names.append(full_name)
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    for start in component.on_start:
        start()
    server.start()
    running = RunningServer(server=server, port=bound, health=health_servicer, component=component)
    running.check_readiness()
    return running


def run(component: Component, *, host: str, port: int, metrics_port: int, workers: int,
        grace: float, authorizer: Authorizer) -> int:
    """Serves until SIGTERM or SIGINT, then shuts down gracefully. Returns the exit code."""
    if metrics_port:
        metrics.serve_metrics(metrics_port, host)
    running = create_server(component, host=host, port=port, workers=workers, authorizer=authorizer)
    running.start_readiness_loop()
    log.info("%s serving gRPC on %s:%d (metrics on %d)", component.name, host, running.port, metrics_port)

    stop_requested = threading.Event()

    def on_signal(signum, _frame):
        log.info("%s received %s, shutting down", component.name, signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop_requested.wait(0.5):
        pass
    running.stop(grace)
    log.info("%s stopped", component.name)
    tracing.shutdown()
    return 0
