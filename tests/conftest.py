"""Shared fixtures: a real PostgreSQL, a migrated template database, and a fresh
database per test cloned from it (``CREATE DATABASE ... TEMPLATE``); Redis.
Helpers that are not fixtures live in ``tests/support``.

PostgreSQL is, in order: ``MEDIC_TEST_DATABASE_URL`` (a libpq URI of a server
where we may create databases); the machine's server on 127.0.0.1:5432 (user
postgres, trust auth); an embedded one started with ``pgserver`` in a temporary
folder (also when ``MEDIC_TEST_EMBEDDED_POSTGRES=1``).
"""
from __future__ import annotations

import os
import tempfile
import uuid

import pytest

from medic import migrate
from medic.db import Database
from tests.support.databases import (LOCAL_URL, create_test_database, drop_test_database, reachable,
                                     run_admin, with_database)


@pytest.fixture(scope="session")
def pg_server_url():
    explicit = os.environ.get("MEDIC_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if not os.environ.get("MEDIC_TEST_EMBEDDED_POSTGRES") and reachable(LOCAL_URL):
        yield LOCAL_URL
        return
    import pgserver  # embedded PostgreSQL, for laptops without a server

    folder = tempfile.mkdtemp(prefix="medic-test-pg-")
    server = pgserver.get_server(folder, cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def template_database(pg_server_url):
    """Migrated once per session; every test's database is a copy of it."""
    name = f"medic_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    run_admin(pg_server_url, f'CREATE DATABASE "{name}"')
    migrate.migrate(with_database(pg_server_url, name))
    yield name
    drop_test_database(pg_server_url, name)


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
