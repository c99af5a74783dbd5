"""Which authorizer each process uses, decided from the settings in one place.

Until API keys are configured for a deployment, every process allows all
callers (``AllowAll``); the auth service's work plugs in here without touching
any RPC or route: services get an ``Authorizer`` for their shared interceptor,
the gateway an ``HttpAuthorizer`` for its one endpoint wrapper plus the
credential metadata its onward RPCs carry.
"""
from __future__ import annotations

from medic.config import Settings
from medic.interceptors import Authorizer


def service_authorizer(settings: Settings, service: str) -> Authorizer | None:
    return None


def gateway_auth(settings: Settings):
    """(HttpAuthorizer or None, credential metadata for onward RPCs)."""
    return None, ()


def service_credential_metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Metadata a Medic process attaches to its calls to other Medic services."""
    return ()
