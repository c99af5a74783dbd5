"""The original Medic's own clients against the gateway: each test replays the
requests one of them makes (method, path, headers, the very body it builds) and
checks what that client reads of the answer.

* Python (`Medic/clients/python/medic.py`, `requests`): `SendHeartbeat` posts
  {heartbeat_name, service_name, status} to `$MEDIC_BASE_URL/heartbeat` with only a
  Content-Type header, and reads the status code (< 300 is success) and the text.
  Its base URL is the only place a key can go: `https://medic:KEY@host`, which
  `requests` turns into HTTP Basic credentials.
* TypeScript (`Medic/clients/typescript/src/index.ts`, `fetch`): `sendHeartbeat`,
  `getHeartbeats` and `registerService` send `JSON.stringify` bodies (undefined
  fields left out) with `Content-Type` plus the caller's `headers` option, where
  the key goes (`fetch` refuses credentials in the URL). It parses every answer
  as JSON, checks `response.ok`, and reads `message` (the error it throws) and
  `results`.
"""
from __future__ import annotations

import json

import requests

from tests.support.http import HttpClient


def js_stringify(value: dict) -> bytes:
    """JSON.stringify: no spaces, and a property whose value is undefined is left out."""
    return json.dumps({k: v for k, v in value.items() if v is not None}, separators=(",", ":")).encode()


class OriginalPythonClient:
    """What `SendHeartbeat(heartbeat_name, service_name, status, base_url)` sends and reads."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def send_heartbeat(self, heartbeat_name: str, service_name: str, status: str) -> tuple[bool, str]:
        response = requests.post(f"{self.base_url}/heartbeat",
                                 json={"heartbeat_name": heartbeat_name, "service_name": service_name,
                                       "status": status},
                                 headers={"Content-Type": "application/json"}, timeout=30)
        return response.status_code < 300, response.text


class OriginalTypeScriptClient:
    """What `new MedicClient({baseUrl, headers})` sends with fetch and reads back."""

    def __init__(self, base_url: str, headers: dict[str, str]):
        self.base_url = base_url
        self.headers = {"Content-Type": "application/json", **headers}

    def _fetch(self, method: str, url: str, body: bytes | None = None) -> tuple[int, dict]:
        response = requests.request(method, url, data=body, headers=self.headers, timeout=30)
        data = response.json()  # the client parses every answer, error or not
        if not response.ok:
            assert isinstance(data.get("message"), str) and data["message"], data  # the error it throws
        return response.status_code, data

    def send_heartbeat(self, heartbeat_name: str, status: str, service_name: str | None = None):
        return self._fetch("POST", f"{self.base_url}/heartbeat", js_stringify(
            {"heartbeat_name": heartbeat_name, "service_name": service_name, "status": status}))

    def get_heartbeats(self, heartbeat_name: str | None = None, service_name: str | None = None,
                       max_count: int | None = None):
        params = {}
        if heartbeat_name:
            params["heartbeat_name"] = heartbeat_name
        if service_name:
            params["service_name"] = service_name
        if max_count:  # `if (options.maxCount)`: 0 is not sent
            params["maxCount"] = str(max_count)
        query = "?" + requests.compat.urlencode(params) if params else ""
        return self._fetch("GET", f"{self.base_url}/heartbeat{query}")

    def register_service(self, heartbeat_name: str, service_name: str, alert_interval: int, *,
                         environment=None, threshold=None, team=None, priority=None, runbook=None):
        return self._fetch("POST", f"{self.base_url}/service", js_stringify({
            "heartbeat_name": heartbeat_name, "service_name": service_name, "alert_interval": alert_interval,
            "environment": environment, "threshold": threshold, "team": team, "priority": priority,
            "runbook": runbook}))


def test_the_original_python_client_posts_heartbeats_with_the_key_in_its_base_url(gateway, stack, http):
    http.post("/service", json={"heartbeat_name": "billing-worker", "service_name": "billing",
                                "alert_interval": 5})
    host = gateway.url.removeprefix("http://")
    client = OriginalPythonClient(f"http://medic:{stack.admin_key}@{host}")

    sent, text = client.send_heartbeat("billing-worker", "billing", "UP")
    assert sent, text
    assert json.loads(text) == {"success": True, "message": "Heartbeat Posted Successfully.", "results": ""}
    assert client.send_heartbeat("billing-worker", "billing", "DEGRADED")[0]

    unknown, text = client.send_heartbeat("no-such-worker", "billing", "UP")
    assert not unknown and "no-such-worker is not listed as a registered service." in text
    keyless, text = OriginalPythonClient(gateway.url).send_heartbeat("billing-worker", "billing", "UP")
    assert not keyless and json.loads(text)["success"] is False

    beats = http.get("/heartbeat", params={"heartbeat_name": "billing-worker"}).json()["results"]
    assert [b["status"] for b in beats] == ["DEGRADED", "UP"]


def test_the_original_typescript_client_registers_posts_and_reads_heartbeats(gateway, stack):
    client = OriginalTypeScriptClient(gateway.url, {"Authorization": f"Bearer {stack.admin_key}"})

    status, data = client.register_service("checkout", "shop", 5, environment="prod", team="payments",
                                           priority="P2", runbook="https://runbooks.example/checkout")
    assert (status, data["success"], data["message"]) == (201, True, "Heartbeat successfully registered.")
    status, data = client.register_service("checkout", "shop", 5, environment="prod")
    assert (status, data["success"], data["message"]) == (200, True, "Heartbeat is already registered.")
    status, data = client.register_service("legacy-cron", "shop", 0, threshold=0, priority="high")
    assert (status, data["success"]) == (201, True)  # the original stored these as sent

    status, data = client.send_heartbeat("prod-checkout", "UP", service_name="shop")
    assert (status, data) == (201, {"success": True, "message": "Heartbeat Posted Successfully.",
                                    "results": ""})
    status, data = client.send_heartbeat("prod-checkout", "DEGRADED")  # serviceName is optional
    assert status == 201 and data["success"] is True

    status, data = client.get_heartbeats(heartbeat_name="prod-checkout")
    assert status == 200 and data["success"] is True
    assert [(h["heartbeat_name"], h["service_name"], h["status"]) for h in data["results"]] == \
        [("prod-checkout", "shop", "DEGRADED"), ("prod-checkout", "shop", "UP")]
    status, data = client.get_heartbeats(service_name="shop", max_count=1)
    assert status == 200 and [h["status"] for h in data["results"]] == ["DEGRADED"]
    status, data = client.get_heartbeats()
    assert status == 200 and len(data["results"]) == 2

    status, data = client.send_heartbeat("nowhere", "UP")
    assert status == 404 and data["message"] == "nowhere is not listed as a registered service."
    status, data = client.register_service("x", "y", "5")  # a wrong type: the original's 400
    assert status == 400 and data["message"].startswith("You have provided invalid request data.")


def test_the_typescript_client_without_its_headers_option_is_told_the_key_is_missing(gateway):
    client = OriginalTypeScriptClient(gateway.url, {})
    status, data = client.send_heartbeat("prod-checkout", "UP")
    assert status == 401 and data["success"] is False and "API key" in data["message"]


def test_the_python_client_needs_no_key_when_anonymous_heartbeats_are_allowed(stack, http):
    from tests.support.stack import start_gateway

    http.post("/service", json={"heartbeat_name": "edge-box", "service_name": "edge", "alert_interval": 5})
    gateway = start_gateway(stack, allow_anonymous_heartbeats=True)
    try:
        sent, text = OriginalPythonClient(gateway.url).send_heartbeat("edge-box", "edge", "UP")
        assert sent, text
        # Anonymous callers get heartbeats only: registering still needs a key.
        assert HttpClient(gateway.url).post("/service", json={
            "heartbeat_name": "x", "service_name": "x", "alert_interval": 1}).status_code == 401
    finally:
        gateway.stop()
