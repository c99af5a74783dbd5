"""Shared fixtures: a real PostgreSQL, a migrated template database, and a fresh
database per test cloned from it (``CREATE DATABASE ... TEMPLATE``).

PostgreSQL is, in order: ``MEDIC_TEST_DATABASE_URL`` (a libpq URI of a server
where we may create databases); the machine's server on 127.0.0.1:5432 (user
postgres, trust auth); an embedded one started with ``pgserver`` in a temporary
folder (also when ``MEDIC_TEST_EMBEDDED_POSTGRES=1``).
"""
from __future__ import annotations

import os
import socket
import tempfile
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from medic import migrate
from medic.db import Database

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def with_database(url: str, name: str) -> str:
    """The same server URI pointing at another database (works for socket URIs too)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin(url: str):
    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_server_url():
    explicit = os.environ.get("MEDIC_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if not os.environ.get("MEDIC_TEST_EMBEDDED_POSTGRES") and _reachable(LOCAL_URL):
        yield LOCAL_URL
        return
    import pgserver  # embedded PostgreSQL, for laptops without a server

    folder = tempfile.mkdtemp(prefix="medic-test-pg-")
    server = pgserver.get_server(folder, cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def _run_admin(url: str, sql: str) -> None:
    conn = _admin(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def template_database(pg_server_url):
    """Migrated once per session; every test's database is a copy of it."""
    name = f"medic_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _run_admin(pg_server_url, f'CREATE DATABASE "{name}"')
    migrate.migrate(with_database(pg_server_url, name))
    yield name
    drop_test_database(pg_server_url, name)


def create_test_database(pg_server_url: str, template: str) -> str:
    name = f"medic_test_{uuid.uuid4().hex[:12]}"
    _run_admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop_test_database(pg_server_url: str, name: str) -> None:
    _run_admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_server_url, template_database):
    """A freshly migrated, empty database for one test."""
    name = create_test_database(pg_server_url, template_database)
    yield with_database(pg_server_url, name)
    drop_test_database(pg_server_url, name)


@pytest.fixture
def db(database_url):
    database = Database(database_url, size=8, application_name="medic-test")
    yield database
    database.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports (for processes that derive
    ports from a base, like `medic up --replicas`), outside the ephemeral range."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 30000 - size)
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no block of {size} free ports")


@pytest.fixture(scope="session")
def redis_url():
    """A reachable Redis. Skips where none exists (a laptop); fails in CI, where one must."""
    import redis

    url = os.environ.get("MEDIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") or os.environ.get("MEDIC_TEST_REQUIRE_REDIS"):
            pytest.fail(f"redis unavailable at {url} and required here: {exc}")
        pytest.skip(f"redis unavailable at {url}: {exc}")
    return url


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's promtool (Debian package `prometheus`). Skips where it is missing (a
    laptop); fails in CI, where .ci/run installs it."""
    import shutil

    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing and required here (apt-get install prometheus)")
        pytest.skip("promtool is missing (apt-get install prometheus)")
    return found
