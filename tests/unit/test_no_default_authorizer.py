"""No process lets every caller through by omission: a gRPC server and the
gateway both need an authorizer given to them."""
from __future__ import annotations

import inspect

import pytest

from gateway.app import create_app
from medic.config import Settings
from medic.interceptors import ServerInterceptor
from medic.server import create_server, run


def test_a_grpc_server_needs_an_authorizer():
    with pytest.raises(TypeError):
        ServerInterceptor("heartbeat", None)
    for function in (create_server, run):
        assert inspect.signature(function).parameters["authorizer"].default is inspect.Parameter.empty


def test_the_gateway_needs_an_authorizer():
    with pytest.raises(TypeError):
        create_app(Settings(), authorizer=None)
    assert inspect.signature(create_app).parameters["authorizer"].default is inspect.Parameter.empty
