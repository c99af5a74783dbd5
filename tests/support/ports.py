"""Free loopback ports for servers started by tests and benchmarks."""
from __future__ import annotations

import os
import random
import socket

BLOCK_RANGE = (20000, 30000)  # below Linux's ephemeral ports (32768+), which free_port uses


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports (for processes that derive
    ports from a base, like `medic up --replicas`), outside the ephemeral range.

    The ports are free when asked, not held: the process started with them binds
    them later. Under pytest-xdist each worker draws from its own slice of the
    range, so two workers starting `medic up` at once cannot pick the same ports."""
    low, high = _worker_slice()
    for _ in range(200):
        base = random.randrange(low, high - size)
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports")


def _worker_slice() -> tuple[int, int]:
    low, high = BLOCK_RANGE
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1):
        return low, high
    width = (high - low) // int(count)
    start = low + int(worker[2:]) * width
    return start, start + width
