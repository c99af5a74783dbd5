"""PostgreSQL databases for tests and benchmarks: a fresh database per test (or
run), cloned from a migrated template or created empty, and dropped after."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def reachable(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def with_database(url: str, name: str) -> str:
    """The same server URI pointing at another database (works for socket URIs too)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def admin_connection(url: str):
    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    return conn


def run_admin(url: str, sql: str) -> None:
    conn = admin_connection(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_test_database(pg_server_url: str, template: str | None = None,
                         prefix: str = "medic_test_") -> str:
    """A new database (a copy of ``template`` when given); its name."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    run_admin(pg_server_url, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_test_database(pg_server_url: str, name: str) -> None:
    run_admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_database(pg_server_url: str, prefix: str = "medic_bench_") -> Iterator[str]:
    """A new database with every migration applied, dropped on exit; yields its URL."""
    from medic import migrate

    name = create_test_database(pg_server_url, prefix=prefix)
    try:
        url = with_database(pg_server_url, name)
        migrate.migrate(url)
        yield url
    finally:
        drop_test_database(pg_server_url, name)
