"""Which authorizer each process uses, decided in one place.

Every gRPC service checks its callers with the shared interceptor and a
``KeyAuthorizer`` (the auth service itself verifies keys locally); the gateway
checks HTTP callers with an ``AsyncKeyAuthorizer`` in its one endpoint wrapper
and calls services with the service credential plus the caller's identity.
Every process needs ``MEDIC_SERVICE_TOKEN`` (``medic up`` generates it);
without it a process refuses to start rather than run unauthenticated.
"""
from __future__ import annotations

from medic import authz
from medic.config import Settings
from medic.interceptors import Authorizer
from medic.server import Component


def service_authorizer(settings: Settings, service: str, component: Component) -> Authorizer:
    if service == "auth":
        from services.auth.app import authorizer

        return authorizer(settings, component)
    return authz.KeyAuthorizer(settings)


def gateway_auth(settings: Settings):
    """(HttpAuthorizer, credential metadata for the gateway's onward RPCs)."""
    return authz.AsyncKeyAuthorizer(settings), authz.service_credential_metadata(settings)


def service_credential_metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Metadata a Medic process attaches to its calls to other Medic services."""
    return authz.service_credential_metadata(settings)
