"""Key format, bearer parsing, the verified-key cache and the authorizer rules,
with an in-test verifier standing in for the auth service's answer."""
from __future__ import annotations

import time

import pytest

from medic import contracts, metrics
from medic.authz import (INVALID_KEY, SERVICE_PRINCIPAL, CachedVerifier, KeyAuthorizer, KeyGrant,
                         Verdict, bearer_token, identity_metadata, parse_key, peer_address,
                         verdict_from_pb, verdict_to_pb)
from medic.config import Settings
from medic.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from medic.ratelimit import InMemoryRateLimiter
from services.auth.keys import new_key

SERVICE_TOKEN = "mds_" + "s" * 43
READ_RPC = contracts.policy_for("/medic.v1.HeartbeatService/ListServices")
WRITE_RPC = contracts.policy_for("/medic.v1.HeartbeatService/RegisterService")
HEARTBEAT_RPC = contracts.policy_for("/medic.v1.HeartbeatService/RecordHeartbeat")
ADMIN_RPC = contracts.policy_for("/medic.v1.AuthService/CreateApiKey")
PEER = "ipv4:10.1.2.3:5555"


class TableVerifier:
    """Answers from a dict; counts the questions."""

    def __init__(self, answers: dict[str, Verdict]):
        self.answers = answers
        self.calls = 0

    def verify(self, key, client_address=""):
        self.calls += 1
        return self.answers.get(key, INVALID_KEY)


def grant(key_id="abcdefghijkl", scopes=("read",), expires_at=None, heartbeat=100, management=20):
    return KeyGrant(key_id=key_id, name="ci", scopes=frozenset(scopes),
                    heartbeat_per_minute=heartbeat, management_per_minute=management,
                    expires_at=expires_at)


def authorizer(answers, **settings):
    verifier = TableVerifier(answers)
    s = Settings(service_token=SERVICE_TOKEN, **settings)
    return KeyAuthorizer(s, verifier=verifier, limiter=InMemoryRateLimiter()), verifier


def bearer(key):
    return {"authorization": f"Bearer {key}"}


def test_generated_keys_parse_to_their_key_id():
    key_id, key = new_key()
    assert key.startswith("mdk_") and parse_key(key) == key_id
    assert len(key.split("_", 2)[2]) == 43


@pytest.mark.parametrize("key", ["", "mdk_", "mdk_short_" + "x" * 43, "abc_abcdefghijkl_" + "x" * 43,
                                 "mdk_abcdefghijkl_" + "x" * 42, "mdk_abcdefghijkl_" + "x" * 43 + "!",
                                 "mdk_abcdefgh_jkl_" + "x" * 43])
def test_malformed_keys_do_not_parse(key):
    assert parse_key(key) is None


def test_bearer_parsing_tells_missing_from_unusable():
    assert bearer_token(None) is None
    assert bearer_token("Bearer  mdk_x ") == "mdk_x"
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Basic dXNlcg==") == ""


def test_peer_addresses():
    assert peer_address("ipv4:10.1.2.3:5555") == "10.1.2.3"
    assert peer_address("ipv6:[::1]:5555") == "::1"


def test_verdicts_survive_the_authorize_message():
    g = grant(scopes=("read", "write"), expires_at=2_000_000_000.5)
    assert verdict_from_pb(verdict_to_pb(Verdict(None, g))) == Verdict(None, g)
    assert verdict_from_pb(verdict_to_pb(Verdict("revoked_key"))) == Verdict("revoked_key")


def test_scope_matrix_of_the_rules():
    keys = {name: new_key()[1] for name in ("read", "write", "admin", "expired", "revoked", "unknown")}
    answers = {
        keys["read"]: Verdict(None, grant(scopes=("read",))),
        keys["write"]: Verdict(None, grant(scopes=("write",))),
        keys["admin"]: Verdict(None, grant(scopes=("admin",))),
        keys["expired"]: Verdict("expired_key"),
        keys["revoked"]: Verdict("revoked_key"),
    }
    auth, _ = authorizer(answers)

    def outcome(key, policy):
        try:
            auth.authorize(policy, bearer(key) if key is not None else {}, PEER)
            return "ok"
        except Unauthenticated:
            return "401"
        except PermissionDenied:
            return "403"

    expected = {
        "read": ("ok", "403", "403"), "write": ("403", "ok", "403"), "admin": ("ok", "ok", "ok"),
        "expired": ("401",) * 3, "revoked": ("401",) * 3, "unknown": ("401",) * 3,
    }
    for name, codes in expected.items():
        assert tuple(outcome(keys[name], p) for p in (READ_RPC, WRITE_RPC, ADMIN_RPC)) == codes, name
    assert tuple(outcome("mdk_garbage", p) for p in (READ_RPC, WRITE_RPC, ADMIN_RPC)) == ("401",) * 3
    assert tuple(outcome(None, p) for p in (READ_RPC, WRITE_RPC, ADMIN_RPC)) == ("401",) * 3


def test_failures_are_counted_by_reason():
    auth, _ = authorizer({})
    before = metrics.AUTH_FAILURES.labels("missing_key")._value.get()
    with pytest.raises(Unauthenticated):
        auth.authorize(READ_RPC, {}, PEER)
    assert metrics.AUTH_FAILURES.labels("missing_key")._value.get() == before + 1


def test_a_key_past_expiry_is_rejected_even_from_the_cache():
    key = new_key()[1]
    auth, _ = authorizer({key: Verdict(None, grant(expires_at=time.time() + 0.3))})
    auth.authorize(READ_RPC, bearer(key), PEER)
    time.sleep(0.35)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authorize(READ_RPC, bearer(key), PEER)


def test_verified_keys_are_cached_for_the_ttl_and_malformed_ones_never_asked():
    key = new_key()[1]
    auth, verifier = authorizer({key: Verdict(None, grant())}, auth_cache_ttl_seconds=0.3)
    for _ in range(5):
        auth.authorize(READ_RPC, bearer(key), PEER)
    assert verifier.calls == 1
    time.sleep(0.35)
    auth.authorize(READ_RPC, bearer(key), PEER)
    assert verifier.calls == 2
    for _ in range(100):
        with pytest.raises(Unauthenticated):
            auth.authorize(READ_RPC, bearer("mdk_not_a_key"), PEER)
    assert verifier.calls == 2


def test_a_key_is_limited_by_its_own_limit_and_refusal_carries_the_figures():
    key = new_key()[1]
    auth, _ = authorizer({key: Verdict(None, grant(scopes=("write",), heartbeat=3))})
    for _ in range(3):
        auth.authorize(HEARTBEAT_RPC, bearer(key), PEER)
    with pytest.raises(ResourceExhausted) as refused:
        auth.authorize(HEARTBEAT_RPC, bearer(key), PEER)
    trailers = dict(refused.value.trailers)
    assert trailers["x-ratelimit-limit"] == "3" and trailers["x-ratelimit-remaining"] == "0"
    assert int(trailers["retry-after"]) >= 1
    # the management class has its own window
    auth.authorize(WRITE_RPC, bearer(key), PEER)


def test_console_pages_get_the_console_limit_or_the_keys_higher_management_limit():
    import dataclasses

    from medic.v1 import options_pb2
    console_page = dataclasses.replace(READ_RPC, rate_limit_class=options_pb2.RATE_LIMIT_CLASS_CONSOLE)
    key, generous = new_key()[1], new_key()[1]
    auth, _ = authorizer({key: Verdict(None, grant(management=2)),
                          generous: Verdict(None, grant(key_id="generousabcd", management=6))},
                         rate_limit_console_per_minute=4)
    for _ in range(4):
        auth.authorize(console_page, bearer(key), PEER)
    with pytest.raises(ResourceExhausted) as refused:
        auth.authorize(console_page, bearer(key), PEER)
    assert dict(refused.value.trailers)["x-ratelimit-limit"] == "4"
    auth.authorize(READ_RPC, bearer(key), PEER)  # management: a window of its own
    for _ in range(6):
        auth.authorize(console_page, bearer(generous), PEER)
    with pytest.raises(ResourceExhausted):
        auth.authorize(console_page, bearer(generous), PEER)


def test_service_credential_holds_every_scope_and_is_never_limited():
    auth, verifier = authorizer({})
    for _ in range(200):
        identity = auth.authorize(ADMIN_RPC, bearer(SERVICE_TOKEN), PEER)
    assert identity.principal == SERVICE_PRINCIPAL and verifier.calls == 0


def test_a_wrong_service_credential_is_an_invalid_key():
    auth, _ = authorizer({})
    with pytest.raises(Unauthenticated):
        auth.authorize(READ_RPC, bearer("mds_" + "t" * 43), PEER)


def test_propagated_identity_is_trusted_only_with_the_service_credential():
    auth, _ = authorizer({}, rate_limit_heartbeat_per_minute=1)
    caller = grant(scopes=("write",))
    from medic.interceptors import Identity
    propagated = dict(identity_metadata(Identity(caller.principal, caller.scopes, "ci ü")))
    for _ in range(5):  # the edge counted it: no limit here
        identity = auth.authorize(HEARTBEAT_RPC, {**bearer(SERVICE_TOKEN), **propagated}, PEER)
    assert identity.principal == caller.principal and identity.name == "ci ü"
    with pytest.raises(Unauthenticated):
        auth.authorize(HEARTBEAT_RPC, propagated, PEER)


def test_anonymous_heartbeats_are_limited_per_client_ip_when_allowed():
    auth, _ = authorizer({}, allow_anonymous_heartbeats=True, rate_limit_anonymous_heartbeat_per_minute=2)
    assert auth.authorize(HEARTBEAT_RPC, {}, PEER).principal == "ip:10.1.2.3"
    auth.authorize(HEARTBEAT_RPC, {}, PEER)
    with pytest.raises(ResourceExhausted):
        auth.authorize(HEARTBEAT_RPC, {}, PEER)
    auth.authorize(HEARTBEAT_RPC, {}, "ipv4:10.9.9.9:1")
    with pytest.raises(Unauthenticated):
        auth.authorize(READ_RPC, {}, PEER)


def test_concurrent_misses_on_one_key_verify_once():
    import threading
    key = new_key()[1]
    verifier = TableVerifier({key: Verdict(None, grant())})
    slow = verifier.verify

    def slow_verify(k, client_address=""):
        time.sleep(0.05)
        return slow(k)

    verifier.verify = slow_verify
    cached = CachedVerifier(verifier, ttl=10)
    threads = [threading.Thread(target=cached.verify, args=(key,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verifier.calls == 1


def test_http_credential_takes_the_key_from_bearer_or_basic():
    import base64

    from medic.authz import http_credential

    def basic(userinfo: str) -> str:
        return "Basic " + base64.b64encode(userinfo.encode()).decode()

    key = new_key()[1]
    assert http_credential(f"Bearer {key}") == key
    assert http_credential(basic(f"{key}:")) == key          # https://KEY:@host
    assert http_credential(basic(f":{key}")) == key          # https://:KEY@host
    assert http_credential(basic(f"medic:{key}")) == key     # https://medic:KEY@host
    assert http_credential(basic(f"{key}:ignored")) == key
    assert http_credential(f"basic {base64.b64encode(key.encode()).decode()}") == key
    assert http_credential("Basic !!not base64") == ""       # present but unusable: invalid, not missing
    assert http_credential(None) is None


def test_grpc_callers_still_need_a_bearer_key():
    import base64

    key = new_key()[1]
    auth, _ = authorizer({key: Verdict(None, grant())})
    assert auth.authorize(READ_RPC, bearer(key), PEER).principal == grant().principal
    with pytest.raises(Unauthenticated):
        auth.authorize(READ_RPC, {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
                       PEER)
