"""A Medic gRPC service served on a free loopback port for the span of a test."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from medic.interceptors import Authorizer
from medic.server import Component, RunningServer, create_server


@contextlib.contextmanager
def serving(component: Component, authorizer: Authorizer, *, workers: int = 8,
            grace: float = 1.0) -> Iterator[RunningServer]:
    running = create_server(component, authorizer=authorizer, port=0, workers=workers)
    try:
        yield running
    finally:
        running.stop(grace=grace)
