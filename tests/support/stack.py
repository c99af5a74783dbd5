"""Every Medic service in-process on loopback with auth enforced (the ``stack``
fixture builds it), and gateways in front of it."""
from __future__ import annotations

import dataclasses

from gateway.app import create_app
from medic.authz import AsyncKeyAuthorizer, service_credential_metadata
from medic.config import Settings
from tests.support.http import ThreadedUvicorn
from tests.support.ports import free_port


@dataclasses.dataclass
class Stack:
    """Every Medic service in-process on loopback, with auth enforced, on one test database."""
    settings: Settings
    admin_key: str
    servers: dict


def start_gateway(stack: Stack, **overrides) -> ThreadedUvicorn:
    settings = dataclasses.replace(stack.settings, **overrides)
    app = create_app(settings, authorizer=AsyncKeyAuthorizer(settings),
                     credential_metadata=service_credential_metadata(settings))
    return ThreadedUvicorn(app, free_port()).start()
