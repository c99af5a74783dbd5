"""A revoked key stops working within the cache TTL + 1 s in another process.

The test process runs the auth service and revokes; a subprocess (this module
run as ``python -m tests.integration.test_auth_revocation``) runs a heartbeat
service guarded by ``KeyAuthorizer``, with its own cache.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc

from medic.v1 import auth_pb2, heartbeat_pb2
from services.auth import bootstrap
from tests.support.auth import (Client, auth_settings, bearer, start_auth_server,
                                            start_heartbeat_server)

TTL = 1.0
REPO = Path(__file__).resolve().parents[2]


def serve_heartbeat_in_this_process() -> None:
    """Subprocess side: serve until stdin closes; print the port first."""
    from medic.authz import KeyAuthorizer
    from medic.config import Settings
    from medic.server import create_server
    from services.heartbeat import app as heartbeat_app

    settings = Settings.from_env()
    running = create_server(heartbeat_app.build(settings), port=0, workers=4,
                            authorizer=KeyAuthorizer(settings))
    print(running.port, flush=True)
    sys.stdin.read()
    running.stop(grace=1)


def revoke_and_wait_until_refused(client, admin_key: str, key: str, listing) -> None:
    """Revokes ``key`` through ``client``'s auth server, then waits while the
    heartbeat server still accepts it: at most the cache TTL (and a second)."""
    client.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key.split("_")[1]),
                             metadata=bearer(admin_key))
    revoked_at = time.monotonic()
    while client.code_of(client.heartbeat.ListServices, listing, key) == grpc.StatusCode.OK:
        assert time.monotonic() - revoked_at <= TTL + 1, "revoked key still accepted"
        time.sleep(0.05)


def test_revoked_key_is_rejected_within_cache_ttl_in_another_process(database_url, db, tmp_path):
    settings = auth_settings(database_url, data_dir=tmp_path, auth_cache_ttl_seconds=TTL)
    auth = start_auth_server(settings, db)
    env = {**os.environ, "MEDIC_DATABASE_URL": database_url, "MEDIC_SERVICE_TOKEN": settings.service_token,
           "MEDIC_AUTH_TARGET": f"127.0.0.1:{auth.port}", "MEDIC_AUTH_CACHE_TTL_SECONDS": str(TTL),
           "MEDIC_DB_POOL_SIZE": "2"}
    child = subprocess.Popen([sys.executable, "-m", "tests.integration.test_auth_revocation"],
                             cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    client = None
    try:
        port = int(child.stdout.readline())
        client = Client(auth.port, port)
        admin_key = bootstrap.bootstrap_admin_key(settings, db)
        key = client.create_key(admin_key, "read", name="revoked-soon", management_per_minute=1000)
        listing = heartbeat_pb2.ListServicesRequest()
        assert client.code_of(client.heartbeat.ListServices, listing, key) == grpc.StatusCode.OK

        revoke_and_wait_until_refused(client, admin_key, key, listing)
        assert client.code_of(client.heartbeat.ListServices, listing, key) == \
            grpc.StatusCode.UNAUTHENTICATED
    finally:
        if client is not None:
            client.close()
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        auth.stop(grace=1)


def test_revocation_through_one_auth_replica_applies_through_another(database_url, db, tmp_path):
    """Replica B's answers are never older than the row: the caller's TTL is the only delay."""
    settings = auth_settings(database_url, data_dir=tmp_path, auth_cache_ttl_seconds=TTL)
    replica_a = start_auth_server(settings, db)
    replica_b = start_auth_server(settings, db)
    heartbeat = start_heartbeat_server(settings, db, replica_b.port)
    via_a = Client(replica_a.port, heartbeat.port)
    try:
        admin_key = bootstrap.bootstrap_admin_key(settings, db)
        key = via_a.create_key(admin_key, "read", management_per_minute=1000)
        listing = heartbeat_pb2.ListServicesRequest()
        assert via_a.code_of(via_a.heartbeat.ListServices, listing, key) == grpc.StatusCode.OK
        time.sleep(TTL * 0.8)  # B's knowledge of the key ages
        via_a.code_of(via_a.heartbeat.ListServices, listing, key)
        revoke_and_wait_until_refused(via_a, admin_key, key, listing)
    finally:
        via_a.close()
        heartbeat.stop(grace=1)
        replica_b.stop(grace=1)
        replica_a.stop(grace=1)


if __name__ == "__main__":
    serve_heartbeat_in_this_process()
