"""Assembles the auth service process: store, local verifier (cached), servicer.

The auth process authorizes its own callers with the same local verifier the
Authorize RPC uses (``authorizer``), never by calling itself.
"""
from __future__ import annotations

from medic.authz import CachedVerifier, KeyAuthorizer
from medic.config import Settings
from medic.db import Database
from medic.server import Component
from medic.v1 import auth_pb2, auth_pb2_grpc
from services.auth.servicer import AuthServicer
from services.auth.store import KeyStore
from services.auth.verifier import LocalVerifier

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


def build(settings: Settings, db: Database | None = None) -> Component:
    owns_db = db is None
    db = db or Database(settings.database_url, settings.db_pool_size,
                        application_name="medic-auth")
    store = KeyStore(db)
    local = LocalVerifier(store, settings)
    servicer = AuthServicer(store, local,
                            CachedVerifier(local, settings.auth_cache_ttl_seconds))
    return Component(
        name="auth",
        servicers=[(auth_pb2_grpc.add_AuthServiceServicer_to_server, servicer, SERVICE_NAME)],
        readiness={"database": db.ping},
        on_stop=[lambda grace: db.close()] if owns_db else [],
    )


def authorizer(settings: Settings, component: Component, limiter=None) -> KeyAuthorizer:
    """The auth process's authorizer: verifies keys locally, sharing the
    servicer's cache (so a revocation applies to this process at once)."""
    servicer = component.servicers[0][1]
    return KeyAuthorizer(settings, verifier=servicer.verifier, limiter=limiter)
