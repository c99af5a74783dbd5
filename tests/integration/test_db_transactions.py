"""Transactions of medic.db on a real PostgreSQL: BEGIN travels with the first
statement, COMMIT/ROLLBACK are sent by Database.transaction, and a connection
never goes back to the pool inside a transaction."""
from __future__ import annotations

import pytest

from medic.db import Database
from medic.errors import InvalidArgument, MedicError


@pytest.fixture
def one_connection(database_url):
    """A pool of one connection: whatever a transaction leaves behind, the next one meets."""
    database = Database(database_url, size=1, application_name="medic-test")
    database.execute("CREATE TABLE probe (n integer NOT NULL)")
    yield database
    database.close()


def numbers(db) -> list[int]:
    return [r["n"] for r in db.all("SELECT n FROM probe ORDER BY n")]


def test_a_transaction_is_atomic_and_sees_one_now(one_connection):
    db = one_connection
    with db.transaction() as tx:
        first = tx.one("SELECT now() AS t, txid_current() AS x")
        tx.execute("INSERT INTO probe VALUES (1), (2)")
        second = tx.one("SELECT now() AS t, txid_current() AS x")
    assert first == second
    assert numbers(db) == [1, 2]


@pytest.mark.parametrize("failure", ["SELECT 1 / 0", "INSERT INTO probe VALUES (NULL)"])
def test_a_failed_statement_rolls_back_what_came_before_and_the_next_transaction_starts_clean(
        one_connection, failure):
    db = one_connection
    with pytest.raises(MedicError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO probe VALUES (1)")
            tx.execute(failure)
    with db.transaction() as tx:
        tx.execute("INSERT INTO probe VALUES (2)")
    assert numbers(db) == [2]


def test_a_failing_first_statement_leaves_no_transaction_open(one_connection):
    db = one_connection
    with pytest.raises(MedicError):
        with db.transaction() as tx:
            tx.execute("SELECT 1 / 0")
    with pytest.raises(InvalidArgument):  # refused by psycopg2 before anything is sent
        with db.transaction() as tx:
            tx.execute("INSERT INTO probe VALUES (length(%s))", ("a\x00b",))
    assert db.one("SELECT pg_current_xact_id_if_assigned() IS NULL AS idle")["idle"]
    assert db.one("SELECT count(*) AS n FROM pg_stat_activity"
                  " WHERE datname = current_database() AND state LIKE 'idle in transaction%%'")["n"] == 0


def test_an_exception_in_python_rolls_back(one_connection):
    db = one_connection
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.values("INSERT INTO probe (n) VALUES %s", [(1,), (2,)])
            raise RuntimeError("the caller changed its mind")
    assert numbers(db) == []


def test_a_block_without_statements_sends_nothing_and_fails_nothing(one_connection):
    with one_connection.transaction():
        pass
    assert numbers(one_connection) == []


def test_a_connection_left_inside_a_transaction_is_not_handed_to_the_next_caller(one_connection):
    db = one_connection
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("BEGIN; INSERT INTO probe VALUES (1)")  # and neither COMMIT nor ROLLBACK
        stale_pid = conn.info.backend_pid
    with db.transaction() as tx:
        tx.execute("INSERT INTO probe VALUES (2)")
        assert tx.one("SELECT pg_backend_pid() AS pid")["pid"] != stale_pid
    assert numbers(db) == [2]


def test_single_statements_commit_on_their_own(one_connection):
    db = one_connection
    db.execute("INSERT INTO probe VALUES (7)")
    assert db.one("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%%'")["n"] == 0
    assert numbers(db) == [7]


def test_a_cancelled_statement_keeps_its_connection_and_a_lost_one_is_replaced(one_connection, database_url):
    """A statement timeout (like a deadlock) is an OperationalError on a connection
    that still works: the caller gets Unavailable, the connection stays in the pool.
    A connection the server drops is replaced."""
    from medic.errors import Unavailable

    db = one_connection
    pid = db.one("SELECT pg_backend_pid() AS pid")["pid"]
    with pytest.raises(Unavailable):
        with db.transaction() as tx:
            tx.execute("SET LOCAL statement_timeout = 50")
            tx.execute("SELECT pg_sleep(2)")
    assert db.one("SELECT pg_backend_pid() AS pid")["pid"] == pid
    assert numbers(db) == []

    killer = Database(database_url, size=1, application_name="medic-test-killer")
    try:
        killer.one("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        killer.close()
    with pytest.raises(Unavailable):
        db.one("SELECT 1 AS one")
    assert db.one("SELECT pg_backend_pid() AS pid")["pid"] != pid
