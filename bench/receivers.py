"""A local HTTP receiver for the benchmarks: when each awaited request first
arrived (wall clock), keyed by what its JSON body says."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Arrivals:
    """Answers every POST 200; ``key(body)`` names the request (None: not one
    the benchmark waits for), and ``arrived[name]`` is when the first such
    request came."""

    def __init__(self, key: Callable[[Any], str | None], path: str = "/"):
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.path = path
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    name = key(json.loads(body or b"{}"))
                except (ValueError, KeyError, TypeError, AttributeError):
                    name = None
                if name is not None:
                    with arrivals.lock:
                        arrivals.arrived.setdefault(name, at)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
