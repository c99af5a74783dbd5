"""The auth service and KeyAuthorizer over real gRPC and PostgreSQL."""
from __future__ import annotations

import dataclasses
import os
import secrets
import stat
import time

import grpc
import pytest

from medic import contracts, metrics
from medic.authz import INVALID_KEY, KeyAuthorizer
from medic.errors import Unauthenticated
from medic.v1 import auth_pb2, heartbeat_pb2, options_pb2
from services.auth import bootstrap
from services.auth.metrics import ARGON2_VERIFICATIONS
from tests.support.auth import (SERVICE_TOKEN, Client, auth_settings, bearer,
                                            register_request, start_auth_server,
                                            start_heartbeat_server)

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


def argon2_runs() -> float:
    return ARGON2_VERIFICATIONS._value.get()


@pytest.fixture
def settings(database_url, tmp_path):
    return auth_settings(database_url, data_dir=tmp_path, auth_cache_ttl_seconds=10.0)


@pytest.fixture
def servers(settings, db):
    auth = start_auth_server(settings, db)
    heartbeat = start_heartbeat_server(settings, db, auth.port)
    yield auth, heartbeat
    heartbeat.stop(grace=1)
    auth.stop(grace=1)


@pytest.fixture
def client(servers):
    auth, heartbeat = servers
    c = Client(auth.port, heartbeat.port)
    yield c
    c.close()


@pytest.fixture
def admin_key(settings, db):
    return bootstrap.bootstrap_admin_key(settings, db)


def test_bootstrap_creates_one_admin_key_written_owner_only(settings, db):
    key = bootstrap.bootstrap_admin_key(settings, db)
    path = settings.data_dir / "admin.key"
    assert key.startswith("mdk_") and path.read_text().strip() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert bootstrap.bootstrap_admin_key(settings, db) is None  # restart: nothing new
    assert path.read_text().strip() == key


def test_bootstrap_key_is_created_only_once_its_file_is_written(settings, db):
    """A key file that cannot be written leaves no admin key behind (nobody would hold
    it, and no later start would make another); the next start makes one."""
    blocked = settings.data_dir / "not-a-dir"
    blocked.write_text("a file where the data directory should be")
    with pytest.raises(OSError):
        bootstrap.bootstrap_admin_key(dataclasses.replace(settings, data_dir=blocked), db)
    assert db.one("SELECT count(*) AS n FROM api_keys")["n"] == 0

    key = bootstrap.bootstrap_admin_key(settings, db)
    assert (settings.data_dir / "admin.key").read_text().strip() == key


def test_bootstrap_key_may_make_more_management_calls_than_the_default(settings, db):
    bootstrap.bootstrap_admin_key(settings, db)
    row = db.one("SELECT management_per_minute, heartbeat_per_minute FROM api_keys")
    assert row["management_per_minute"] == bootstrap.BOOTSTRAP_MANAGEMENT_PER_MINUTE == 300
    assert row["heartbeat_per_minute"] is None  # the default applies


def test_service_token_is_generated_once_owner_only(settings):
    token = bootstrap.ensure_service_token(dataclasses.replace(settings, service_token=""))
    path = settings.data_dir / "service.token"
    assert token.startswith("mds_") and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert bootstrap.ensure_service_token(dataclasses.replace(settings, service_token="")) == token


def test_scope_matrix_over_grpc(client, admin_key):
    keys = {
        "read": client.create_key(admin_key, "read"),
        "write": client.create_key(admin_key, "write"),
        "admin": admin_key,
        "expired": client.create_key(admin_key, "admin", expires_in=1),
        "revoked": client.create_key(admin_key, "admin", name="to-revoke"),
        "malformed": "mdk_not-a-key",
        "unknown id": "mdk_AAAAAAAAAAAA_" + "x" * 43,
        "missing": None,
    }
    revoked_id = [k for k in client.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(),
                                                     metadata=bearer(admin_key)).api_keys
                  if k.name == "to-revoke"][0].key_id
    client.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=revoked_id), metadata=bearer(admin_key))
    time.sleep(1.1)  # the expired key expires

    def codes(name: str):
        key = keys[name]
        return (
            client.code_of(client.heartbeat.ListServices, heartbeat_pb2.ListServicesRequest(), key),
            client.code_of(client.heartbeat.RegisterService, register_request(f"svc-{name}"), key),
            client.code_of(client.auth.ListApiKeys, auth_pb2.ListApiKeysRequest(), key),
        )

    expected = {
        "read": (OK, DENIED, DENIED),
        "write": (DENIED, OK, DENIED),
        "admin": (OK, OK, OK),
        "expired": (UNAUTHENTICATED,) * 3,
        "revoked": (UNAUTHENTICATED,) * 3,
        "malformed": (UNAUTHENTICATED,) * 3,
        "unknown id": (UNAUTHENTICATED,) * 3,
        "missing": (UNAUTHENTICATED,) * 3,
    }
    assert {name: codes(name) for name in keys} == expected


def test_authorize_answers_the_service_credential_only(client, admin_key):
    request = auth_pb2.AuthorizeRequest(key=admin_key)
    assert client.code_of(client.auth.Authorize, request, admin_key) == DENIED
    assert client.code_of(client.auth.Authorize, request, None) == UNAUTHENTICATED
    answer = client.auth.Authorize(request, metadata=bearer(SERVICE_TOKEN))
    assert answer.verdict == auth_pb2.AUTHORIZE_VERDICT_VALID
    assert answer.rate_limits.heartbeat_per_minute == 100  # the default
    assert answer.rate_limits.management_per_minute == 300  # the bootstrap key's override


def test_keys_are_listed_without_secrets_and_plaintext_is_shown_once(client, admin_key):
    created = client.auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="ci", scopes=[options_pb2.SCOPE_WRITE]),
        metadata=bearer(admin_key))
    assert created.key.startswith(f"mdk_{created.api_key.key_id}_")
    listed = client.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(admin_key))
    assert [k.name for k in listed.api_keys] == ["bootstrap-admin", "ci"]
    assert created.key.split("_", 2)[2] not in str(listed)


def test_invalid_creations_are_rejected(client, admin_key):
    bad = [auth_pb2.CreateApiKeyRequest(name="", scopes=[1]),
           auth_pb2.CreateApiKeyRequest(name="x"),
           auth_pb2.CreateApiKeyRequest(name="x", scopes=[0]),
           auth_pb2.CreateApiKeyRequest(name="x", scopes=[1], rate_limits=auth_pb2.RateLimitOverrides(
               heartbeat_per_minute=-1)),
           auth_pb2.CreateApiKeyRequest(name="x", scopes=[1], rate_limits=auth_pb2.RateLimitOverrides(
               management_per_minute=10_000_001))]
    for request in bad:
        assert client.code_of(client.auth.CreateApiKey, request, admin_key) == grpc.StatusCode.INVALID_ARGUMENT
    # 0 means "no override", as in SetRateLimits.
    created = client.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
        name="x", scopes=[1], rate_limits=auth_pb2.RateLimitOverrides(heartbeat_per_minute=0)),
        metadata=bearer(admin_key))
    assert not created.api_key.rate_limits.HasField("heartbeat_per_minute")
    assert client.code_of(client.auth.RevokeApiKey, auth_pb2.RevokeApiKeyRequest(key_id="nope"),
                          admin_key) == grpc.StatusCode.NOT_FOUND


def test_rate_limit_overrides_apply_and_refusals_carry_trailers(client, admin_key):
    key = client.create_key(admin_key, "write", heartbeat_per_minute=2)
    request = heartbeat_pb2.RecordHeartbeatRequest(heartbeat_name="nope", status="UP")
    codes = [client.code_of(client.heartbeat.RecordHeartbeat, request, key) for _ in range(2)]
    assert codes == [grpc.StatusCode.NOT_FOUND] * 2  # let through to the servicer: no such heartbeat
    with pytest.raises(grpc.RpcError) as refused:
        client.heartbeat.RecordHeartbeat(request, metadata=bearer(key), timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(refused.value.trailing_metadata())
    assert (trailers["x-ratelimit-limit"], trailers["x-ratelimit-remaining"]) == ("2", "0")
    assert 1 <= int(trailers["retry-after"]) <= 60
    assert time.time() < int(trailers["x-ratelimit-reset"]) <= time.time() + 61


def test_exactly_the_limit_of_64_concurrent_calls_pass_the_interceptor(client, admin_key):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    key = client.create_key(admin_key, "write", heartbeat_per_minute=13)
    request = heartbeat_pb2.RecordHeartbeatRequest(heartbeat_name="nope", status="UP")
    start = threading.Barrier(64)

    def call(_):
        start.wait(timeout=10)
        return client.code_of(client.heartbeat.RecordHeartbeat, request, key)

    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(call, range(64)))
    assert (codes.count(grpc.StatusCode.NOT_FOUND), codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)) == (13, 51)


def test_set_rate_limits_sets_and_clears_overrides(client, admin_key):
    key = client.create_key(admin_key, "read")
    key_id = key.split("_")[1]

    def effective():
        return client.auth.Authorize(auth_pb2.AuthorizeRequest(key=key),
                                     metadata=bearer(SERVICE_TOKEN)).rate_limits

    assert effective().heartbeat_per_minute == 100
    set_ = client.auth.SetRateLimits(auth_pb2.SetRateLimitsRequest(
        key_id=key_id, rate_limits=auth_pb2.RateLimitOverrides(heartbeat_per_minute=500)),
        metadata=bearer(admin_key)).api_key
    assert set_.rate_limits.heartbeat_per_minute == 500
    assert not set_.rate_limits.HasField("management_per_minute")
    assert (effective().heartbeat_per_minute, effective().management_per_minute) == (500, 20)
    cleared = client.auth.SetRateLimits(auth_pb2.SetRateLimitsRequest(
        key_id=key_id, rate_limits=auth_pb2.RateLimitOverrides(heartbeat_per_minute=0)),
        metadata=bearer(admin_key)).api_key
    assert not cleared.rate_limits.HasField("heartbeat_per_minute")
    assert effective().heartbeat_per_minute == 100


def test_argon2_runs_once_per_key_per_process(settings, db, admin_key):
    """Once per TTL every process asks Authorize again (which reads the key's row:
    revocation and expiry stay current), but the auth service remembers that the
    presented key matched its immutable hash: no second argon2."""
    settings = dataclasses.replace(settings, auth_cache_ttl_seconds=2.0)
    auth = start_auth_server(settings, db)
    heartbeat = start_heartbeat_server(settings, db, auth.port)
    client = Client(auth.port, heartbeat.port)
    try:
        key = client.create_key(admin_key, "read", management_per_minute=1000)
        before = argon2_runs()
        for _ in range(10):
            assert client.code_of(client.heartbeat.ListServices,
                                  heartbeat_pb2.ListServicesRequest(), key) == OK
        assert argon2_runs() - before == 1
        misses = metrics.AUTH_CACHE_LOOKUPS.labels("miss")._value.get()
        time.sleep(2.1)
        for _ in range(10):
            client.heartbeat.ListServices(heartbeat_pb2.ListServicesRequest(), metadata=bearer(key))
        assert metrics.AUTH_CACHE_LOOKUPS.labels("miss")._value.get() > misses  # asked again
        assert argon2_runs() - before == 1
    finally:
        client.close()
        heartbeat.stop(grace=1)
        auth.stop(grace=1)


def test_a_wrong_secret_for_a_remembered_key_id_is_still_refused(settings, servers, client, admin_key):
    """The auth service remembers keys that matched by the digest of the whole
    presented key: another secret under the same key id is hashed and refused."""
    key = client.create_key(admin_key, "read", management_per_minute=1000)
    assert client.code_of(client.heartbeat.ListServices, heartbeat_pb2.ListServicesRequest(), key) == OK
    key_id = key.split("_")[1]
    forged = f"mdk_{key_id}_" + ("A" if key[-1] != "A" else "B") * 43
    before = argon2_runs()
    assert client.code_of(client.heartbeat.ListServices, heartbeat_pb2.ListServicesRequest(),
                          forged) == UNAUTHENTICATED
    assert argon2_runs() - before == 1
    assert client.code_of(client.heartbeat.ListServices, heartbeat_pb2.ListServicesRequest(), key) == OK


def test_malformed_and_unknown_keys_cost_no_argon2(settings, servers, client, admin_key):
    """10,000 requests: 5,000 malformed keys (refused before any RPC) and 5,000 with
    well-formed keys of 100 unknown ids, each presented 50 times (each id is asked
    of the auth service once, which refuses it on the key-id lookup; then the
    refusal is cached)."""
    auth, _heartbeat = servers
    authorizer = KeyAuthorizer(dataclasses.replace(settings, auth_target=f"127.0.0.1:{auth.port}"))
    policy = contracts.policy_for("/medic.v1.HeartbeatService/ListServices")
    before = argon2_runs()
    failures_before = metrics.AUTH_FAILURES.labels("invalid_key")._value.get()
    presented = [f"mdk_{i}_short" for i in range(5000)]
    presented += [f"mdk_{i % 100:012d}_" + "x" * 43 for i in range(5000)]
    for key in presented:
        with pytest.raises(Unauthenticated):
            authorizer.authorize(policy, {"authorization": f"Bearer {key}"}, "ipv4:1.2.3.4:5")
    assert argon2_runs() == before
    assert metrics.AUTH_FAILURES.labels("invalid_key")._value.get() - failures_before == 10_000
    authorizer.verifier.inner.close()


def test_revocation_applies_at_once_in_the_auth_process(client, admin_key):
    key = client.create_key(admin_key, "admin", name="soon-revoked")
    assert client.code_of(client.auth.ListApiKeys, auth_pb2.ListApiKeysRequest(), key) == OK
    key_id = key.split("_")[1]
    client.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key_id), metadata=bearer(admin_key))
    assert client.code_of(client.auth.ListApiKeys, auth_pb2.ListApiKeysRequest(), key) == UNAUTHENTICATED


def test_the_last_active_admin_key_cannot_be_revoked(client, admin_key, db):
    def revoke(key_id: str, by: str):
        return client.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key_id),
                                        metadata=bearer(by), timeout=5)

    admin_id = admin_key.split("_")[1]
    with pytest.raises(grpc.RpcError) as refused:
        revoke(admin_id, admin_key)  # itself, the only admin key
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "last active admin key" in refused.value.details()
    assert "bootstrap-admin" in refused.value.details()

    # An expired admin key and a revoked one are no help; a read key neither.
    expired = client.create_key(admin_key, "admin", name="expired-admin")
    db.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = %s",
               (expired.split("_")[1],))
    revoked = client.create_key(admin_key, "admin", name="revoked-admin")
    revoke(revoked.split("_")[1], admin_key)
    client.create_key(admin_key, "read", name="reader")
    with pytest.raises(grpc.RpcError) as refused:
        revoke(admin_id, admin_key)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # With a second active admin key, either may go, but not both.
    second = client.create_key(admin_key, "admin", name="second-admin")
    assert revoke(admin_id, second).api_key.HasField("revoked_at")
    with pytest.raises(grpc.RpcError) as refused:
        revoke(second.split("_")[1], second)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert revoke(admin_id, second).api_key.HasField("revoked_at")  # revoking again: unchanged


def test_last_used_is_recorded(client, admin_key):
    client.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(admin_key))
    listed = client.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(admin_key))
    assert listed.api_keys[0].HasField("last_used_at")


def test_last_used_is_written_at_most_once_a_minute(client, admin_key, db):
    key = client.create_key(admin_key, "read")
    key_id = key.split("_")[1]

    def authorize_and_read():
        client.auth.Authorize(auth_pb2.AuthorizeRequest(key=key), metadata=bearer(SERVICE_TOKEN), timeout=5)
        return db.one("SELECT last_used_at FROM api_keys WHERE key_id = %s", (key_id,))["last_used_at"]

    first = authorize_and_read()
    assert first is not None
    time.sleep(0.05)
    assert [authorize_and_read() for _ in range(3)] == [first] * 3  # within the minute: not written again
    db.execute("UPDATE api_keys SET last_used_at = last_used_at - interval '61 seconds' WHERE key_id = %s",
               (key_id,))
    assert authorize_and_read() > first  # a minute later: written


def test_keys_never_appear_in_logs(client, admin_key, caplog):
    import logging
    caplog.set_level(logging.DEBUG)
    created = client.auth.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="logged?", scopes=[options_pb2.SCOPE_READ]),
        metadata=bearer(admin_key))
    for key in (created.key, admin_key, "mdk_AAAAAAAAAAAA_" + "y" * 43, SERVICE_TOKEN):
        client.code_of(client.heartbeat.ListServices, heartbeat_pb2.ListServicesRequest(), key)
        client.code_of(client.auth.RevokeApiKey, auth_pb2.RevokeApiKeyRequest(key_id="x"), key)
    client.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=created.api_key.key_id),
                             metadata=bearer(admin_key))
    logged = caplog.text
    # The secret part: after mdk_<id>_ for a key, after mds_ for the service token
    # (either may itself hold "_", so never split on the last one).
    for secret in (created.key.split("_", 2)[2], admin_key.split("_", 2)[2], SERVICE_TOKEN.removeprefix("mds_")):
        assert len(secret) == 43 and secret not in logged


# --- guessing secrets: failed verifications are limited, argon2 work is bounded -----------

def wrong_secret(key: str) -> str:
    return f"mdk_{key.split('_')[1]}_{secrets.token_urlsafe(32)}"


def authorize(client, key: str, client_address: str = "") -> auth_pb2.AuthorizeResponse:
    return client.auth.Authorize(auth_pb2.AuthorizeRequest(key=key, client_address=client_address),
                                 metadata=bearer(SERVICE_TOKEN), timeout=5)


def limited_failures() -> float:
    return metrics.AUTH_FAILURES.labels("too_many_failures")._value.get()


@pytest.fixture
def limited_servers(database_url, db, tmp_path):
    settings = auth_settings(database_url, data_dir=tmp_path, auth_failures_per_key_per_minute=3,
                             auth_failures_per_ip_per_minute=5)
    admin_key = bootstrap.bootstrap_admin_key(settings, db)
    auth = start_auth_server(settings, db)
    client = Client(auth.port)
    yield client, admin_key
    client.close()
    auth.stop(grace=1)


def test_failed_verifications_of_a_key_id_are_limited_without_argon2(limited_servers):
    client, admin_key = limited_servers
    owner = client.create_key(admin_key, "read", name="attacked")
    assert authorize(client, owner, "10.0.0.1").verdict == auth_pb2.AUTHORIZE_VERDICT_VALID

    for n in range(3):  # each from its own address: only the key id's count matters here
        assert authorize(client, wrong_secret(owner), f"10.1.0.{n}").verdict == \
            auth_pb2.AUTHORIZE_VERDICT_INVALID_KEY
    argon2_before, limited_before = argon2_runs(), limited_failures()
    for n in range(5):
        with pytest.raises(grpc.RpcError) as refused:
            authorize(client, wrong_secret(owner), f"10.2.0.{n}")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many failed API key verifications for this key id" in refused.value.details()
        retry_after = dict(refused.value.trailing_metadata())["retry-after"]
        assert 1 <= int(retry_after) <= 60
    assert argon2_runs() == argon2_before  # refused before any argon2 work
    assert limited_failures() - limited_before == 5

    # The owner, verified before, is not locked out; other key ids are untouched.
    assert authorize(client, owner, "10.2.0.9").verdict == auth_pb2.AUTHORIZE_VERDICT_VALID
    other = client.create_key(admin_key, "read", name="other")
    assert authorize(client, other, "10.2.0.9").verdict == auth_pb2.AUTHORIZE_VERDICT_VALID


def test_failed_verifications_from_one_address_are_limited_across_key_ids(limited_servers):
    client, admin_key = limited_servers
    victims = [client.create_key(admin_key, "read", name=f"victim-{n}") for n in range(3)]
    for n in range(5):  # 5 failures over 3 key ids: none reaches its own limit of 3
        assert authorize(client, wrong_secret(victims[n % 3]), "10.9.9.9").verdict == \
            auth_pb2.AUTHORIZE_VERDICT_INVALID_KEY
    fresh = client.create_key(admin_key, "read", name="fresh")
    with pytest.raises(grpc.RpcError) as refused:
        authorize(client, fresh, "10.9.9.9")  # not verified before: it would cost argon2
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "this client address" in refused.value.details()
    assert authorize(client, fresh, "10.9.9.10").verdict == auth_pb2.AUTHORIZE_VERDICT_VALID
    assert authorize(client, fresh, "10.9.9.9").verdict == auth_pb2.AUTHORIZE_VERDICT_VALID  # now known


def test_argon2_work_past_the_concurrency_bound_is_refused_at_once(settings, db, admin_key):
    from medic.errors import Unavailable
    from services.auth.store import KeyStore
    from services.auth.verifier import LocalVerifier

    verifier = LocalVerifier(KeyStore(db), dataclasses.replace(settings, auth_verify_concurrency=1))
    assert verifier.verify(admin_key).grant is not None  # verified once: remembered
    busy_before = metrics.AUTH_FAILURES.labels("verification_busy")._value.get()
    with verifier.failures.argon2_slot():  # another verification holds the only slot
        argon2_before = argon2_runs()
        with pytest.raises(Unavailable) as refused:  # refused, not queued behind it
            verifier.verify(wrong_secret(admin_key))
        assert argon2_runs() == argon2_before
        assert dict(refused.value.trailers)["retry-after"] == "1"
        assert verifier.verify(admin_key).grant is not None  # a remembered key needs no slot
    assert metrics.AUTH_FAILURES.labels("verification_busy")._value.get() - busy_before == 1
    assert verifier.verify(wrong_secret(admin_key)) == INVALID_KEY  # slot free again
