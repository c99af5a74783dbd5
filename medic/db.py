"""PostgreSQL access shared by every service: a bounded, blocking connection pool,
a ``transaction()`` context manager and ``one``/``all``/``execute`` helpers.

Database errors are translated here, at the boundary, into ``medic.errors``:
a lost connection or an unreachable server becomes ``Unavailable`` (the broken
connection is discarded, so the pool heals without a restart), a unique
violation ``Conflict``, a check or foreign-key violation ``InvalidArgument``.
Every connection runs with ``search_path = medic``.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

from medic.errors import Conflict, InvalidArgument, MedicError, MissingReference, Unavailable

log = logging.getLogger(__name__)

SCHEMA = "medic"
Row = dict[str, Any]


def _translate(exc: psycopg2.Error) -> MedicError:
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return Unavailable("database unavailable")
    code = getattr(exc, "pgcode", None)
    if code == psycopg2.errorcodes.UNIQUE_VIOLATION:
        return Conflict("already exists")
    if code == psycopg2.errorcodes.FOREIGN_KEY_VIOLATION:
        return _missing_reference(exc)
    if code in (psycopg2.errorcodes.CHECK_VIOLATION,
                psycopg2.errorcodes.NOT_NULL_VIOLATION, psycopg2.errorcodes.STRING_DATA_RIGHT_TRUNCATION,
                psycopg2.errorcodes.NUMERIC_VALUE_OUT_OF_RANGE,
                psycopg2.errorcodes.INVALID_TEXT_REPRESENTATION):
        return InvalidArgument(f"rejected by the database ({psycopg2.errorcodes.lookup(code)})")
    if code in (psycopg2.errorcodes.ADMIN_SHUTDOWN, psycopg2.errorcodes.CANNOT_CONNECT_NOW,
                psycopg2.errorcodes.CRASH_SHUTDOWN, psycopg2.errorcodes.TOO_MANY_CONNECTIONS):
        return Unavailable("database unavailable")
    return MedicError("database error")


def _missing_reference(exc: psycopg2.Error) -> MissingReference:
    """'team_id 7 does not exist' from the server's detail 'Key (team_id)=(7) is not present ...'."""
    detail = getattr(getattr(exc, "diag", None), "message_detail", None) or ""
    if detail.startswith("Key (") and "is not present" in detail:
        column = detail[5:detail.index(")")]
        value = detail[detail.index("=(") + 2:detail.index(")", detail.index("=("))]
        return MissingReference(f"{column} {value} does not exist", column, value)
    return MissingReference("a referenced record does not exist")


class Database:
    """A pool of at most ``size`` connections; callers wait (up to ``acquire_timeout``)
    for a free one instead of failing when all are busy."""

    def __init__(self, dsn: str, size: int = 10, *, acquire_timeout: float = 5.0,
                 application_name: str = "medic", connect_timeout: int = 3):
        self.dsn = dsn
        self.size = size
        self.acquire_timeout = acquire_timeout
        self._slots = threading.BoundedSemaphore(size)
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            0, size, dsn,
            options=f"-c search_path={SCHEMA}",
            application_name=application_name,
            connect_timeout=connect_timeout,
        )
        # Open connections lazily, but keep every returned one (psycopg2 closes
        # returned connections beyond `minconn`: a new connection per transaction).
        self._pool.minconn = size

    def close(self) -> None:
        if not self._pool.closed:
            self._pool.closeall()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        if not self._slots.acquire(timeout=self.acquire_timeout):
            raise Unavailable("database pool exhausted")
        conn = None
        broken = False
        try:
            try:
                conn = self._pool.getconn()
            except psycopg2.Error as exc:
                raise _translate(exc) from exc
            yield conn
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            broken = True
            raise
        finally:
            if conn is not None:
                if conn.closed:
                    broken = True
                self._pool.putconn(conn, close=broken)
            self._slots.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Tx"]:
        """One transaction: committed when the block ends, rolled back on error."""
        try:
            with self.connection() as conn:
                try:
                    with conn.cursor() as cur:
                        yield Tx(cur)
                    conn.commit()
                except BaseException:
                    if not conn.closed:
                        try:
                            conn.rollback()
                        except psycopg2.Error:
                            pass
                    raise
        except psycopg2.Error as exc:
            raise _translate(exc) from exc
        except ValueError as exc:
            # psycopg2 refuses to send a string holding NUL, before any SQL runs.
            if "NUL (0x00)" in str(exc):
                raise InvalidArgument("text must not contain NUL (0x00) characters") from exc
            raise

    # Single-statement conveniences, each its own transaction.
    def one(self, sql: str, params: Any = None) -> Row | None:
        with self.transaction() as tx:
            return tx.one(sql, params)

    def all(self, sql: str, params: Any = None) -> list[Row]:
        with self.transaction() as tx:
            return tx.all(sql, params)

    def execute(self, sql: str, params: Any = None) -> int:
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def ping(self) -> bool:
        try:
            self.one("SELECT 1 AS ok")
            return True
        except MedicError:
            return False


class Tx:
    """The cursor of one transaction; rows come back as dicts.

    Rows are built as ``dict(zip(columns, values))`` from psycopg2's tuples, in
    C: psycopg2's RealDictCursor builds them key by key in Python, which cost
    the heartbeat ingest path ~20 % of its CPU (500-row batches)."""

    def __init__(self, cur: psycopg2.extensions.cursor):
        self.cur = cur

    def _columns(self) -> list[str]:
        return [column.name for column in self.cur.description]

    def one(self, sql: str, params: Any = None) -> Row | None:
        self.cur.execute(sql, params)
        row = self.cur.fetchone()
        return None if row is None else dict(zip(self._columns(), row))

    def all(self, sql: str, params: Any = None) -> list[Row]:
        self.cur.execute(sql, params)
        return self._rows(self.cur.fetchall())

    def _rows(self, rows: list[tuple]) -> list[Row]:
        columns = self._columns()
        return [dict(zip(columns, row)) for row in rows]

    def execute(self, sql: str, params: Any = None) -> int:
        self.cur.execute(sql, params)
        return self.cur.rowcount

    def values(self, sql: str, rows: Sequence[Sequence[Any]], template: str | None = None,
               fetch: bool = False) -> list[Row]:
        """``INSERT ... VALUES %s`` / ``UPDATE ... FROM (VALUES %s)`` for many rows at once."""
        result = psycopg2.extras.execute_values(self.cur, sql, rows, template=template,
                                                page_size=max(len(rows), 1), fetch=fetch)
        return self._rows(result) if fetch else []


def wait_until_reachable(dsn: str, timeout: float = 30.0) -> None:
    """Blocks until PostgreSQL accepts a connection (start-up ordering)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(dsn, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() >= deadline:
                raise Unavailable("database unreachable") from None
            time.sleep(0.2)
