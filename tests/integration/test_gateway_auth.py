"""Authentication and rate limits at the HTTP edge: a real gateway with its
``AsyncKeyAuthorizer``, real auth, heartbeat and routing services behind it, each
with its own ``KeyAuthorizer``."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.support.http import HttpClient
from tests.support.stack import start_gateway


@pytest.fixture
def gateways(stack):
    """Starts gateways (with settings overrides) in front of the stack; yields
    (admin key, start_gateway(**overrides) -> HttpClient without a key)."""
    started = []

    def start(**overrides) -> HttpClient:
        server = start_gateway(stack, **overrides)
        started.append(server)
        return HttpClient(server.url)

    yield stack.admin_key, start
    for server in started:
        server.stop()


def key_header(key):
    return {"Authorization": f"Bearer {key}"} if key else {}


def create_key(http, admin_key, *scopes, **fields):
    response = http.post("/v2/api-keys", json={"name": f"k-{'-'.join(scopes)}", "scopes": list(scopes), **fields},
                         headers=key_header(admin_key))
    assert response.status_code == 201, response.text
    return response.json()["results"]


def test_scope_matrix_over_http(gateways):
    admin_key, start = gateways
    http = start()
    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1},
              headers=key_header(admin_key))
    keys = {scope: create_key(http, admin_key, scope)["key"] for scope in ("read", "write", "admin")}
    expired = create_key(http, admin_key, "admin", expires_at=(
        dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat())["key"]
    revoked = create_key(http, admin_key, "admin")
    assert http.delete(f"/v2/api-keys/{revoked['api_key']['key_id']}", headers=key_header(admin_key)).status_code == 200
    keys.update(expired=expired, revoked=revoked["key"], malformed="mdk_nope", missing=None,
                unknown="mdk_AAAAAAAAAAAA_" + "x" * 43)
    time.sleep(1.5)  # the expiry passes and the revocation outlives every cache TTL

    read = lambda key: http.get("/service", headers=key_header(key)).status_code
    write = lambda key: http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"},
                                  headers=key_header(key)).status_code
    admin = lambda key: http.get("/v2/api-keys", headers=key_header(key)).status_code
    expected = {
        # Scopes are exact: only admin implies the others.
        "read": (200, 403, 403), "write": (403, 201, 403), "admin": (200, 201, 200),
        "expired": (401, 401, 401), "revoked": (401, 401, 401), "malformed": (401, 401, 401),
        "missing": (401, 401, 401), "unknown": (401, 401, 401),
    }
    actual = {name: (read(key), write(key), admin(key)) for name, key in keys.items()}
    assert actual == expected


def test_failures_carry_the_envelope_and_www_authenticate(gateways):
    admin_key, start = gateways
    http = start()
    missing = http.get("/service")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["success"] is False and missing.json()["message"]
    read_key = create_key(http, admin_key, "read")["key"]
    denied = http.get("/v2/api-keys", headers=key_header(read_key))
    assert denied.status_code == 403 and "admin" in denied.json()["message"]
    assert read_key not in denied.text and admin_key not in denied.text


def test_health_metrics_and_docs_need_no_key(gateways):
    _admin_key, start = gateways
    http = start()
    for path, status in (("/health", 200), ("/health/live", 200), ("/health/ready", 200),
                         ("/v1/healthcheck/network", 204), ("/metrics", 200), ("/docs", 200),
                         ("/docs/openapi.json", 200)):
        assert http.get(path).status_code == status, path


def test_rate_limit_gives_429_with_retry_after_and_headers(gateways):
    admin_key, start = gateways
    http = start()
    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1},
              headers=key_header(admin_key))
    key = create_key(http, admin_key, "write", rate_limits={"heartbeat_per_minute": 3})["key"]
    statuses = []
    for _ in range(4):
        response = http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"}, headers=key_header(key))
        statuses.append(response.status_code)
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert int(response.headers["X-RateLimit-Reset"]) > time.time() - 1
    assert statuses == [201, 201, 201, 429]
    body = response.json()
    assert body["success"] is False and body["retry_after"] >= 1
    assert int(response.headers["Retry-After"]) == body["retry_after"]
    assert response.headers["X-RateLimit-Remaining"] == "0"
    # The management class has its own window.
    assert http.get("/service", headers=key_header(create_key(http, admin_key, "read")["key"])).status_code == 200


def test_api_key_management_over_http(gateways):
    admin_key, start = gateways
    http = start()
    created = http.post("/v2/api-keys", json={"name": "ci", "scopes": ["write"]}, headers=key_header(admin_key))
    assert created.status_code == 201
    results = created.json()["results"]
    assert results["key"].startswith("mdk_") and results["api_key"]["scopes"] == ["write"]
    key_id = results["api_key"]["key_id"]
    listed = http.get("/v2/api-keys", headers=key_header(admin_key))
    assert results["key"] not in listed.text and "hash" not in listed.text
    assert key_id in [k["key_id"] for k in listed.json()["results"]]
    limits = http.request("PUT", f"/v2/api-keys/{key_id}/rate-limits", json={"heartbeat_per_minute": 7},
                          headers=key_header(admin_key))
    assert limits.status_code == 200, limits.text
    assert limits.json()["results"]["rate_limits"]["heartbeat_per_minute"] == 7
    bad = http.post("/v2/api-keys", json={"name": "x", "scopes": ["root"]}, headers=key_header(admin_key))
    assert bad.status_code == 400 and "scopes" in bad.json()["message"]
    assert http.delete("/v2/api-keys/nosuchkey123", headers=key_header(admin_key)).status_code == 404


def test_anonymous_heartbeats_are_limited_per_client_ip(gateways):
    admin_key, start = gateways
    http = start(allow_anonymous_heartbeats=True, rate_limit_anonymous_heartbeat_per_minute=2)
    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1},
              headers=key_header(admin_key))
    statuses = [http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"}).status_code
                for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert http.get("/service").status_code == 401  # only heartbeats may be anonymous


def post_heartbeats_at_once(urls, key, count=64):
    """``count`` POST /heartbeat released together (a barrier), spread over ``urls``
    in turn; returns their status codes."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    start = threading.Barrier(count)

    def post(n):
        start.wait(timeout=10)
        return requests.post(urls[n % len(urls)] + "/heartbeat", json={"heartbeat_name": "web", "status": "UP"},
                             headers=key_header(key), timeout=30).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(post, range(count)))


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_exactly_the_limit_of_64_concurrent_heartbeats_pass(gateways, backend, request):
    admin_key, start = gateways
    overrides = {"redis_url": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    http = start(**overrides)
    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1},
              headers=key_header(admin_key))
    key = create_key(http, admin_key, "write", rate_limits={"heartbeat_per_minute": 13})["key"]
    statuses = post_heartbeats_at_once([http.url], key)
    assert (statuses.count(201), statuses.count(429), len(statuses)) == (13, 51, 64)


def test_two_gateways_sharing_redis_hold_one_limit_under_concurrency(gateways, redis_url):
    admin_key, start = gateways
    first, second = start(redis_url=redis_url), start(redis_url=redis_url)
    first.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1},
               headers=key_header(admin_key))
    key = create_key(first, admin_key, "write", rate_limits={"heartbeat_per_minute": 13})["key"]
    statuses = post_heartbeats_at_once([first.url, second.url], key)
    assert (statuses.count(201), statuses.count(429), len(statuses)) == (13, 51, 64)


def test_keys_never_appear_in_gateway_logs_metrics_or_answers(gateways, caplog):
    """Good, wrong-secret, unknown and malformed keys through the gateway: none of
    their secrets shows up in its logs (DEBUG included), its /metrics or its answers."""
    import logging

    admin_key, start = gateways
    http = start()
    good = create_key(http, admin_key, "read")["key"]
    key_id = good.split("_")[1]
    wrong_secret = f"mdk_{key_id}_" + "w" * 43
    presented = [good, wrong_secret, "mdk_AAAAAAAAAAAA_" + "u" * 43, "mdk_nope_short", admin_key]
    caplog.set_level(logging.DEBUG)
    answers = []
    for key in presented:
        for path in ("/service", "/v2/api-keys"):
            response = http.get(path, headers=key_header(key))
            answers.append(response.text + str(response.headers))
        response = http.post("/heartbeat", json={"heartbeat_name": "nope", "status": "UP"}, headers=key_header(key))
        answers.append(response.text + str(response.headers))
    assert {a[:3] for a in answers}  # something was answered
    metrics_text = http.get("/metrics").text
    secrets_ = [key.split("_", 2)[2] for key in presented]  # mdk_<id>_<secret>; a secret may hold "_"
    for where, text in (("logs", caplog.text), ("metrics", metrics_text), ("answers", "\n".join(answers))):
        leaked = [s for s in secrets_ if s in text]
        assert not leaked, f"a key's secret appears in the gateway's {where}"


def test_gateway_limits_locally_while_redis_is_down_and_shares_again_when_it_returns(gateways, redis_url):
    """Redis down: requests are still served and limited (by the gateway's own
    window), the outage is counted on /metrics; Redis back: the shared window again."""
    from urllib.parse import urlsplit

    import redis

    from tests.support.tcpproxy import TcpProxy

    admin_key, start = gateways
    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname, parts.port or 6379)
    proxy.cut()
    http = start(redis_url=f"redis://127.0.0.1:{proxy.port}{parts.path}")
    http.post("/service", json={"heartbeat_name": "web", "service_name": "web", "alert_interval": 1},
              headers=key_header(admin_key))
    created = create_key(http, admin_key, "write", rate_limits={"heartbeat_per_minute": 3})
    key, key_id = created["key"], created["api_key"]["key_id"]
    beat = lambda: http.post("/heartbeat", json={"heartbeat_name": "web", "status": "UP"},
                             headers=key_header(key)).status_code
    assert [beat() for _ in range(4)] == [201, 201, 201, 429]
    errors = [line for line in http.get("/metrics").text.splitlines()
              if line.startswith('medic_redis_errors_total{operation="rate_limit"}')]
    assert errors and float(errors[0].split()[-1]) >= 1

    shared = redis.Redis.from_url(redis_url)
    try:
        proxy.restore()
        time.sleep(1.2)  # past the limiter's pause after a failure
        assert beat() == 201  # Redis's window is empty: the local count stays local
        assert shared.zcard(f"medic:ratelimit:heartbeat:key:{key_id}") == 1
    finally:
        shared.delete(f"medic:ratelimit:heartbeat:key:{key_id}")
        shared.close()
        proxy.close()



def test_revoking_the_last_admin_key_over_http_is_refused_with_the_reason(gateways):
    admin_key, start = gateways
    http = start()
    response = http.delete(f"/v2/api-keys/{admin_key.split('_')[1]}", headers=key_header(admin_key))
    assert response.status_code == 400
    assert "last active admin key" in response.json()["message"]
    assert http.get("/v2/api-keys", headers=key_header(admin_key)).status_code == 200  # still works


def test_guessing_secrets_of_a_key_id_gets_429_with_retry_after_and_the_owner_still_passes(gateways):
    import secrets

    admin_key, start = gateways
    http = start(auth_cache_ttl_seconds=60.0)
    owner = create_key(http, admin_key, "read")["key"]
    assert http.get("/service", headers=key_header(owner)).status_code == 200  # cached grant
    key_id = owner.split("_")[1]

    def guess():
        return http.get("/service", headers=key_header(f"mdk_{key_id}_{secrets.token_urlsafe(32)}"))

    assert [guess().status_code for _ in range(10)] == [401] * 10  # the default: 10 a minute
    refused = guess()
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "too many failed API key verifications" in refused.json()["message"]
    assert http.get("/service", headers=key_header(owner)).status_code == 200
