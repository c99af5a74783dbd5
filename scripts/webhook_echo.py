#!/usr/bin/env python3
"""Prints every webhook Medic sends to it, for trying Medic out locally.

    python3 scripts/webhook_echo.py [port]        (default 9000)

Then subscribe it: POST /v2/webhooks {"url": "http://127.0.0.1:9000/medic"}
(Medic refuses loopback destinations unless MEDIC_WEBHOOK_ALLOW_PRIVATE=true).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Echo(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = json.loads(body)
            print(f"{event.get('type')}: {event.get('service', {}).get('heartbeat_name')} "
                  f"(alert {event.get('alert', {}).get('alert_id')})", flush=True)
        except ValueError:
            print(body.decode(errors="replace"), flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Echo).serve_forever()
