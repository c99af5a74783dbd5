"""Free loopback ports for servers started by tests and benchmarks."""
from __future__ import annotations

import random
import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports (for processes that derive
    ports from a base, like `medic up --replicas`), outside the ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 30000 - size)
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
