"""PostgreSQL access shared by every service: a bounded, blocking connection pool,
a ``transaction()`` context manager and ``one``/``all``/``execute`` helpers.

Database errors are translated here, at the boundary, into ``medic.errors``:
a lost connection or an unreachable server becomes ``Unavailable`` (the broken
connection is discarded, so the pool heals without a restart), a unique
violation ``Conflict``, a check or foreign-key violation ``InvalidArgument``.
Every connection runs with ``search_path = medic``. ``Prepared`` statements
(the hot ones) are parsed once per connection.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from medic.errors import (
    Conflict,
    InvalidArgument,
    MedicError,
    MissingReference,
    NotFound,
    Unavailable,
)

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


# Errors after which a connection's prepared statements are dropped: "cached plan
# must not change result type" (a schema change), and a name PREPAREd already
# or not at all (the connection's record and the session disagree).
STALE_PREPARED = frozenset({psycopg2.errorcodes.FEATURE_NOT_SUPPORTED,
                            psycopg2.errorcodes.DUPLICATE_PREPARED_STATEMENT,
                            psycopg2.errorcodes.INVALID_SQL_STATEMENT_NAME})


class _Connection(psycopg2.extensions.connection):
    """A connection that remembers the statements PREPAREd on it (they last as
    long as its session, whatever happens to the transaction that made them).

    In autocommit mode: ``Tx`` opens the transaction itself, with ``BEGIN`` in
    the same round trip as the first statement, where psycopg2 would send
    ``BEGIN`` on its own first (a round trip, and a wait for the GIL, per
    transaction)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.autocommit = True
        self.prepared: set[str] = set()


class Prepared:
    """A hot statement, parsed and planned once per connection (``PREPARE``) and
    then run by name (``EXECUTE``): the parse and plan of the ingest's statements
    cost as much as running them for small batches.

    ``sql`` uses ``%(name)s`` placeholders like any other statement; ``params``
    names each one with its SQL type, in the order of the ``PREPARE``.

    PostgreSQL plans the first five runs for their values and then keeps the
    generic plan only while it is estimated no dearer than those; otherwise it
    plans every run afresh. ``generic_plan=True`` makes each run use the generic
    plan (``SET LOCAL plan_cache_mode``, sent with the ``EXECUTE``), for a
    statement written to plan well without its values: the ingest's small-batch
    statement was planned afresh on every run (0 generic plans in 311), 0.3 ms,
    more than running it. Only for such statements: forced on every statement,
    the ingest's 500-heartbeat batches were slower (8 of 11 runs, by up to 20 %)."""

    _names: dict[str, str] = {}  # name -> statement: one statement per name

    def __init__(self, name: str, sql: str, params: Sequence[tuple[str, str]], *,
                 generic_plan: bool = False):
        positional = sql.replace("%%", "%")
        for index, (param, _) in enumerate(params, 1):
            placeholder = f"%({param})s"
            if placeholder not in positional:
                raise ValueError(f"{name}: {placeholder} is not in the statement")
            positional = positional.replace(placeholder, f"${index}")
        if "%(" in positional:
            raise ValueError(f"{name}: a placeholder has no declared type")
        known = Prepared._names.setdefault(name, positional)
        if known != positional:
            raise ValueError(f"{name}: another statement is prepared under this name")
        self.name = name
        types = f" ({', '.join(t for _, t in params)})" if params else ""
        values = f" ({', '.join(f'%({p})s' for p, _ in params)})" if params else ""
        self.prepare_sql = f"PREPARE {name}{types} AS {positional}"
        # SET LOCAL lasts until the transaction ends: a statement sent alone is
        # its own (implicit) transaction with the SET.
        force = "SET LOCAL plan_cache_mode = force_generic_plan; " if generic_plan else ""
        self.execute_sql = f"{force}EXECUTE {name}{values}"


# OperationalErrors after which the connection is fine (see Database.connection).
_CONNECTION_SURVIVES = (psycopg2.extensions.TransactionRollbackError, psycopg2.extensions.QueryCanceledError)


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
            connection_factory=_Connection,
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
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            # A deadlock, a serialization failure or a cancelled statement is an
            # OperationalError on a connection that still works (its transaction
            # was rolled back): keep it. Any other may mean a broken connection.
            broken = not isinstance(exc, _CONNECTION_SURVIVES)
            raise
        finally:
            if conn is not None:
                # A connection still in a transaction (an exception between a statement
                # and its ROLLBACK) must not reach the next caller, who would join it:
                # psycopg2's pool cannot roll it back, the transaction being ours, not its.
                if conn.closed or conn.info.transaction_status != TRANSACTION_STATUS_IDLE:
                    broken = True
                self._pool.putconn(conn, close=broken)
            self._slots.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction: committed when the block ends, rolled back on error.
        A block that runs no statement sends nothing."""
        with self._tx(Tx) as tx:
            yield tx
            if tx.began:
                # Statements queued for the commit (an audit event) go in its round trip.
                tx.cur.execute("".join(tx.at_commit) + "COMMIT")

    @contextlib.contextmanager
    def _tx(self, kind: type[Tx]) -> Iterator[Tx]:
        try:
            with self.connection() as conn, conn.cursor() as cur:
                try:
                    yield kind(cur)
                except BaseException as exc:
                    if not conn.closed:
                        try:
                            if conn.info.transaction_status != TRANSACTION_STATUS_IDLE:
                                cur.execute("ROLLBACK")
                            if conn.prepared and getattr(exc, "pgcode", None) in STALE_PREPARED:
                                # A schema change invalidated a prepared plan, or the
                                # session lost track of what it prepared: prepare
                                # afresh rather than fail again.
                                cur.execute("DEALLOCATE ALL")
                                conn.prepared.clear()
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

    # Single-statement conveniences: one statement is a transaction of its own
    # (autocommit), with no BEGIN or COMMIT to send.
    def one(self, sql: str | Prepared, params: Any = None) -> Row | None:
        with self._tx(_Statement) as tx:
            return tx.one(sql, params)

    def all(self, sql: str, params: Any = None) -> list[Row]:
        with self._tx(_Statement) as tx:
            return tx.all(sql, params)

    def execute(self, sql: str, params: Any = None) -> int:
        with self._tx(_Statement) as tx:
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

    OPENING = "BEGIN; "  # sent in front of the first statement, in the same round trip

    def __init__(self, cur: psycopg2.extensions.cursor):
        self.cur = cur
        self.began = False  # BEGIN sent (with the first statement)
        self.at_commit: list[str] = []

    def before_commit(self, sql: str, params: Any = None) -> None:
        """Runs ``sql`` in this transaction, sent in the same round trip as its
        COMMIT: a statement whose result nobody reads (an audit event) costs no
        round trip of its own. If it fails, the transaction rolls back as if it
        had been sent at once. Only after a statement of the transaction."""
        if not self.began:
            raise RuntimeError("before_commit() needs a statement of the transaction first")
        self.at_commit.append(self.cur.mogrify(sql, params).decode() + "; ")

    def _columns(self) -> list[str]:
        return [column.name for column in self.cur.description]

    def _run(self, sql: str | Prepared, params: Any) -> None:
        if isinstance(sql, Prepared):
            conn = self.cur.connection
            if sql.name not in conn.prepared:
                self.cur.execute(sql.prepare_sql)  # once per connection, session-wide
                conn.prepared.add(sql.name)
            sql = sql.execute_sql
        self.cur.execute(self._opening() + sql, params)

    def _opening(self) -> str:
        """What goes in front of the next statement: BEGIN before the first."""
        if self.began:
            return ""
        self.began = True
        return self.OPENING

    def one(self, sql: str | Prepared, params: Any = None) -> Row | None:
        self._run(sql, params)
        row = self.cur.fetchone()
        return None if row is None else dict(zip(self._columns(), row))

    def all(self, sql: str | Prepared, params: Any = None) -> list[Row]:
        self._run(sql, params)
        return self._rows(self.cur.fetchall())

    def _rows(self, rows: list[tuple]) -> list[Row]:
        columns = self._columns()
        return [dict(zip(columns, row)) for row in rows]

    def execute(self, sql: str | Prepared, params: Any = None) -> int:
        self._run(sql, params)
        return self.cur.rowcount

    def values(self, sql: str, rows: Sequence[Sequence[Any]], template: str | None = None,
               fetch: bool = False) -> list[Row]:
        """``INSERT ... VALUES %s`` / ``UPDATE ... FROM (VALUES %s)`` for many rows at once."""
        if not rows:
            return []
        result = psycopg2.extras.execute_values(self.cur, self._opening() + sql, rows, template=template,
                                                page_size=len(rows), fetch=fetch)
        return self._rows(result) if fetch else []


class _Statement(Tx):
    """One statement on its own, committed by PostgreSQL as it ends (autocommit)."""

    OPENING = ""


def set_clause(fields: Iterable[str], allowed: Sequence[str]) -> str:
    """``col = %(col)s, ...`` for each column of ``allowed`` that is in ``fields``,
    in ``allowed``'s order: column names come from the caller's fixed list, never
    from a request."""
    present = set(fields)
    return ", ".join(f"{name} = %({name})s" for name in allowed if name in present)


def uuid_param(name: str, value: str) -> str:
    """A UUID from a request, as a parameter; INVALID_ARGUMENT naming it when it is none."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID") from None


class Where:
    """A WHERE clause of fixed SQL fragments, each filter's value a bound parameter.

    A filter left at its empty value (0, "", None) adds nothing; ``sql`` is ""
    when no filter is set."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.params: list[Any] = []

    def add(self, fragment: str, *values: Any) -> None:
        self.conditions.append(fragment)
        self.params.extend(values)

    def equal(self, column: str, value: Any) -> None:
        if value:
            self.add(f"{column} = %s", value)

    def equal_uuid(self, column: str, value: str) -> None:
        if value:
            self.add(f"{column} = %s", uuid_param(column, value))

    def between(self, column: str, start: dt.datetime | None, end: dt.datetime | None) -> None:
        """``start <= column <= end``, either end open when not given."""
        if start is not None:
            self.add(f"{column} >= %s", start)
        if end is not None:
            self.add(f"{column} <= %s", end)

    @property
    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""

    def page(self, db: Database, table: str, columns: str, order: str, limit: int,
             offset: int) -> tuple[list[Row], int]:
        """One page of the matching rows of ``table`` in ``order``, and how many
        match in all (read in one transaction, so the two agree). ``table``,
        ``columns`` and ``order`` are the caller's fixed SQL, never a request's."""
        with db.transaction() as tx:
            total = tx.one(f"SELECT count(*) AS n FROM {table} {self.sql}", self.params)["n"]
            rows = tx.all(f"SELECT {columns} FROM {table} {self.sql} ORDER BY {order} LIMIT %s OFFSET %s",
                          [*self.params, limit, offset])
        return rows, total


def update_locked(tx: Tx, lock: str, update: str, allowed: Sequence[str], key: tuple[str, Any],
                  params: Mapping[str, Any], not_found: str) -> tuple[Row, Row]:
    """Lock one row, set the columns of ``allowed`` that ``params`` holds, and
    return the row before and after (the same row when there is nothing to set).

    ``lock`` selects the row ``FOR UPDATE`` by ``%s``, the key's value; ``update``
    has an ``{assignments}`` slot and names the key as ``%(<key name>)s``.
    Raises ``NotFound(not_found)`` when there is no such row."""
    name, value = key
    before = tx.one(lock, (value,))
    if before is None:
        raise NotFound(not_found)
    if not params:
        return before, before
    return before, tx.one(update.format(assignments=set_clause(params, allowed)), {**params, name: value})


# Array parameters as PostgreSQL array literals, built in one pass. psycopg2
# adapts a Python list element by element (measured here: 4-9 us per element,
# 11 ms for the arrays of a 500-heartbeat batch); one string costs ~0.2 us per
# element. Pass the result where the statement casts to the array type.

def int_array(values: Iterable[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def timestamp_array(values: Iterable[dt.datetime | None]) -> str:
    # ISO 8601 holds none of the characters that need quoting in an array literal.
    # Times with a fixed offset (all that come from the database) are formatted
    # once per distinct value: isoformat() costs ~4 us here, and a batch repeats
    # a few times (its `now`, now + each interval) hundreds of times. Others (a
    # zoneinfo time in a DST fold compares equal to its twin) every time.
    memo: dict[dt.datetime | None, str] = {None: "NULL"}
    parts = []
    for value in values:
        text = memo.get(value)
        if text is None:
            text = value.isoformat()  # type: ignore[union-attr]
            if type(value.tzinfo) is dt.timezone:  # type: ignore[union-attr]
                memo[value] = text
        parts.append(text)
    return "{" + ",".join(parts) + "}"


def text_array(values: Iterable[str | None]) -> str:
    # Each element double-quoted, with backslash and double quote escaped, as
    # PostgreSQL's own array output does; NULL unquoted.
    return "{" + ",".join(
        "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for v in values) + "}"


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
