"""Authorizers that let every caller through, for tests of one service (or the
gateway) on its own. Production code has none: every process is given a real
authorizer (``medic_cli.wiring``) and refuses to start without one."""
from __future__ import annotations

from gateway.app import Decision
from medic.interceptors import ANONYMOUS, Identity


class AllowAll:
    """A gRPC server's ``Authorizer`` that lets every call through, as anonymous."""

    def authorize(self, policy, metadata, peer) -> Identity:
        return ANONYMOUS


class AllowAllHttp:
    """The gateway's ``HttpAuthorizer`` that lets every request through."""

    async def authorize(self, policy, headers, client_ip) -> Decision:
        return Decision()
