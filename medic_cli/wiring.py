"""Which authorizer each process uses, decided in one place.

Every gRPC service checks its callers with the shared interceptor and a
``KeyAuthorizer`` (the auth service itself verifies keys locally); the gateway
checks HTTP callers with an ``AsyncKeyAuthorizer`` (set up in ``gateway.app.serve``).
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
