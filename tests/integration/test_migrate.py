"""`medic migrate` (medic/migrate.py) on real, empty PostgreSQL databases: each
migration once, in numeric order, in its own transaction, under an advisory lock."""
from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg2
import pytest

from medic import migrate
from tests.support.databases import run_admin, drop_test_database, with_database

REAL_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@pytest.fixture
def empty_database_url(pg_server_url):
    """A new database with nothing in it (not cloned from the migrated template)."""
    name = f"medic_migrate_{uuid.uuid4().hex[:12]}"
    run_admin(pg_server_url, f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    drop_test_database(pg_server_url, name)


def write_migrations(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


def query(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def recorded(url: str) -> list[tuple[int, str]]:
    return query(url, "SELECT version, name FROM medic.schema_migrations ORDER BY version")


def table_exists(url: str, table: str) -> bool:
    return query(url, f"SELECT to_regclass('medic.{table}') IS NOT NULL")[0][0]


THREE = {
    "001_create_jobs.sql": "CREATE TABLE jobs (id integer PRIMARY KEY);",
    "002_add_owner.sql": "ALTER TABLE jobs ADD COLUMN owner text;",
    "003_create_runs.sql": "CREATE TABLE runs (job_id integer REFERENCES jobs);",
}


def test_second_run_applies_nothing(empty_database_url, tmp_path):
    folder = write_migrations(tmp_path / "migrations", THREE)

    assert migrate.migrate(empty_database_url, folder) == ["001_create_jobs", "002_add_owner", "003_create_runs"]
    assert migrate.migrate(empty_database_url, folder) == []
    assert recorded(empty_database_url) == [(1, "create_jobs"), (2, "add_owner"), (3, "create_runs")]


def test_failing_migration_is_rolled_back_unrecorded_and_applied_after_the_fix(empty_database_url, tmp_path):
    # The 2nd file's first statement succeeds, its second fails: the first must not survive either.
    broken = dict(THREE, **{"002_add_owner.sql": "CREATE TABLE owners (id integer);\n"
                                                 "ALTER TABLE jobs ADD COLUMN owner texxt;"})
    folder = write_migrations(tmp_path / "migrations", broken)

    with pytest.raises(migrate.MigrationError, match=r"002_add_owner\.sql") as failed:
        migrate.migrate(empty_database_url, folder)
    assert "texxt" in str(failed.value)  # PostgreSQL's own message comes along
    assert recorded(empty_database_url) == [(1, "create_jobs")]
    assert table_exists(empty_database_url, "jobs")
    assert not table_exists(empty_database_url, "owners")
    assert not table_exists(empty_database_url, "runs")  # nothing after the failure ran

    write_migrations(folder, {"002_add_owner.sql": "CREATE TABLE owners (id integer);\n"
                                                   "ALTER TABLE jobs ADD COLUMN owner text;"})
    assert migrate.migrate(empty_database_url, folder) == ["002_add_owner", "003_create_runs"]
    assert recorded(empty_database_url) == [(1, "create_jobs"), (2, "add_owner"), (3, "create_runs")]
    assert table_exists(empty_database_url, "owners") and table_exists(empty_database_url, "runs")


def test_concurrent_runs_apply_each_migration_exactly_once(empty_database_url, tmp_path):
    # Each migration is slow enough for the runs to overlap, and fails if applied twice
    # (CREATE TABLE without IF NOT EXISTS); `applications` counts every application.
    folder = write_migrations(tmp_path / "migrations", {
        "001_counter.sql": "CREATE TABLE applications (version integer);"
                           "INSERT INTO applications VALUES (1); SELECT pg_sleep(0.3);",
        "002_step2.sql": "CREATE TABLE step2 (id integer);"
                         "INSERT INTO applications VALUES (2); SELECT pg_sleep(0.3);",
        "003_step3.sql": "CREATE TABLE step3 (id integer);"
                         "INSERT INTO applications VALUES (3); SELECT pg_sleep(0.3);",
    })
    results, errors = [], []
    start = threading.Barrier(4)

    def run():
        start.wait()
        try:
            results.append(migrate.migrate(empty_database_url, folder))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(results, key=len) == [[], [], [], ["001_counter", "002_step2", "003_step3"]]
    assert query(empty_database_url, "SELECT version FROM medic.applications ORDER BY version") == [(1,), (2,), (3,)]
    assert [version for version, _name in recorded(empty_database_url)] == [1, 2, 3]


def test_migrations_run_in_numeric_order_whatever_the_listing_order(empty_database_url, tmp_path):
    # Written newest first; each depends on the one before it, and logs its position.
    folder = write_migrations(tmp_path / "migrations", {
        "010_third.sql": "ALTER TABLE jobs ADD COLUMN c integer; INSERT INTO applied_order (file) VALUES ('010');",
        "002_second.sql": "CREATE TABLE jobs (b integer); INSERT INTO applied_order (file) VALUES ('002');",
        "001_first.sql": "CREATE TABLE applied_order (n serial, file text); INSERT INTO applied_order (file) "
                         "VALUES ('001');",
        "notes.txt": "not a migration: ignored",
    })

    assert migrate.migrate(empty_database_url, folder) == ["001_first", "002_second", "010_third"]
    assert query(empty_database_url, "SELECT file FROM medic.applied_order ORDER BY n") == [
        ("001",), ("002",), ("010",)]


def test_the_shipped_migrations_all_apply_to_an_empty_database(empty_database_url):
    files = sorted(path.name for path in REAL_MIGRATIONS.glob("[0-9][0-9][0-9]_*.sql"))
    assert files, "no migrations found"

    applied = migrate.migrate(empty_database_url)

    assert [f"{label}.sql" for label in applied] == files
    assert len(recorded(empty_database_url)) == len(files)
    assert migrate.migrate(empty_database_url) == []


def test_a_misnamed_sql_file_is_refused_not_skipped(empty_database_url, tmp_path):
    folder = write_migrations(tmp_path / "migrations", {**THREE, "4_forgotten.sql": "CREATE TABLE x ();"})
    with pytest.raises(migrate.MigrationError, match="4_forgotten.sql"):
        migrate.migrate(empty_database_url, folder)
    assert not table_exists(empty_database_url, "jobs")  # nothing applied from a folder with a misnamed file


def test_medic_migrate_reports_an_unreachable_database_in_one_line():
    import os
    import subprocess
    import sys

    from tests.support.ports import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    env["MEDIC_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    done = subprocess.run([sys.executable, "-m", "medic_cli", "migrate"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("medic migrate: cannot reach the database:")


def test_two_files_with_one_number_are_refused(empty_database_url, tmp_path):
    folder = write_migrations(tmp_path / "migrations", {**THREE, "002_also_two.sql": "SELECT 1;"})
    with pytest.raises(migrate.MigrationError, match="duplicate migration numbers"):
        migrate.migrate(empty_database_url, folder)
    assert not table_exists(empty_database_url, "jobs")
