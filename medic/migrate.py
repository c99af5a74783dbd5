"""``medic migrate``: apply ``migrations/NNN_name.sql`` in order, each once.

Each file runs in its own transaction together with its row in
``medic.schema_migrations``; a session-level advisory lock makes replicas that
start at the same time wait for each other instead of racing.
"""
from __future__ import annotations

import importlib.resources
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2

log = logging.getLogger(__name__)

# An arbitrary, fixed key: every Medic process migrating this database contends for it.
ADVISORY_LOCK_KEY = 0x6D65646963  # "medic"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


class MigrationError(RuntimeError):
    """A migration failed; its transaction was rolled back and it is not recorded."""


def _shipped():
    try:
        return importlib.resources.files("medic.migrations")
    except ModuleNotFoundError:
        # Run from a checkout (a benchmark, `python -m medic_cli`) whose medic/
        # comes before an installed copy: the checkout's own migrations/.
        return Path(__file__).resolve().parent.parent / "migrations"


def available(directory: Path | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default: the ones shipped as ``medic.migrations``),
    in numeric order."""
    found = []
    root = directory if directory is not None else _shipped()
    for entry in root.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
        elif entry.name.endswith(".sql"):
            # Skipped silently, a misnamed file would never be applied.
            raise MigrationError(f"{entry.name}: a migration must be named NNN_name.sql "
                                 "(three digits, lower-case letters, digits and _)")
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"duplicate migration numbers in {versions}")
    return found


def migrate(dsn: str, directory: Path | None = None) -> list[str]:
    """Applies pending migrations (from ``directory``, default the shipped ones);
    returns the names applied. Raises ``MigrationError`` naming the file that failed;
    the ones before it stay applied."""
    applied_now = []
    conn = psycopg2.connect(dsn, connect_timeout=5, application_name="medic-migrate")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.autocommit = False
            with conn, conn.cursor() as cur:
                cur.execute("CREATE SCHEMA IF NOT EXISTS medic")
                cur.execute("""
                    CREATE TABLE IF NOT EXISTS medic.schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now())""")
                cur.execute("SELECT version FROM medic.schema_migrations")
                done = {row[0] for row in cur.fetchall()}
            for migration in available(directory):
                if migration.version in done:
                    continue
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute("SET LOCAL search_path = medic")
                        cur.execute(migration.sql)
                        cur.execute("INSERT INTO medic.schema_migrations (version, name) VALUES (%s, %s)",
                                    (migration.version, migration.name))
                except psycopg2.Error as exc:
                    raise MigrationError(f"migration {migration.label}.sql failed (rolled back): "
                                         f"{str(exc).strip()}") from exc
                log.info("applied migration %s", migration.label)
                applied_now.append(migration.label)
        finally:
            if not conn.closed:  # a lost connection has let go of the lock already
                try:
                    conn.autocommit = True
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
                except psycopg2.Error:
                    pass  # the error that got here matters more; closing frees the lock
    finally:
        conn.close()
    return applied_now
