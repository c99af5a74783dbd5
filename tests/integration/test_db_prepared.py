"""Prepared statements (medic.db.Prepared) against a real PostgreSQL: prepared and
planned once per connection, and a plan invalidated by a schema change heals on the
next call."""
import pytest

from medic.db import Database, Prepared
from medic.errors import MedicError

COUNT_NAMED_SQL = """
    SELECT count(*) AS n, %(label)s AS label FROM prepared_probe WHERE name = ANY(%(names)s)
"""
COUNT_NAMED_PARAMS = [("label", "text"), ("names", "text[]")]
COUNT_NAMED = Prepared("test_count_named", COUNT_NAMED_SQL, COUNT_NAMED_PARAMS)

SELECT_ALL = Prepared("test_select_all", "SELECT * FROM prepared_probe ORDER BY name", [])


@pytest.fixture
def probe_db(database_url):
    database = Database(database_url, size=1)
    with database.transaction() as tx:
        tx.execute("CREATE TABLE prepared_probe (name text)")
        tx.execute("INSERT INTO prepared_probe VALUES ('a'), ('b'), ('c')")
    yield database
    database.close()


def _prepared_names(database: Database) -> list[str]:
    rows = database.all("SELECT name FROM pg_prepared_statements ORDER BY name")
    return [r["name"] for r in rows]


def test_a_prepared_statement_runs_with_named_parameters_and_is_prepared_once(probe_db):
    for _ in range(3):
        assert probe_db.one(COUNT_NAMED, {"label": "x", "names": ["a", "c", "z"]}) == {"n": 2, "label": "x"}
    assert probe_db.one(COUNT_NAMED, {"label": "empty", "names": []}) == {"n": 0, "label": "empty"}
    # One connection in the pool: the statement exists once on it.
    assert _prepared_names(probe_db) == ["test_count_named"]


def test_the_ingest_statement_is_planned_once_not_on_every_call(db):
    """PostgreSQL re-planned the ingest's small-batch statement on every call (0.3 ms,
    more than running it) until it was made to run its generic plan."""
    from services.heartbeat.heartbeat_store import HeartbeatStore, IngestItem
    store = HeartbeatStore(Database(db.dsn, size=1))
    for n in range(12):
        store.record_steady_heartbeats([IngestItem(f"nobody-{n}", None, "UP", None)])
    [plans] = store.db.all("SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                           " WHERE name = 'medic_record_few_steady_heartbeats'")
    store.db.close()
    assert plans == {"generic_plans": 12, "custom_plans": 0}


def test_a_plan_invalidated_by_a_schema_change_fails_once_then_heals(probe_db):
    assert [r["name"] for r in probe_db.all(SELECT_ALL)] == ["a", "b", "c"]
    probe_db.execute("ALTER TABLE prepared_probe ADD COLUMN extra integer DEFAULT 7")
    with pytest.raises(MedicError):
        probe_db.all(SELECT_ALL)  # "cached plan must not change result type"
    assert probe_db.all(SELECT_ALL)[0] == {"name": "a", "extra": 7}


def test_other_errors_keep_the_prepared_statements(probe_db):
    probe_db.one(COUNT_NAMED, {"label": "x", "names": ["a"]})
    probe_db.execute("CREATE UNIQUE INDEX ON prepared_probe (name)")
    with pytest.raises(MedicError):
        probe_db.execute("INSERT INTO prepared_probe VALUES ('a')")  # a unique violation
    assert _prepared_names(probe_db) == ["test_count_named"]


def test_one_name_one_statement():
    assert Prepared("test_count_named", COUNT_NAMED_SQL, COUNT_NAMED_PARAMS).name == "test_count_named"
    with pytest.raises(ValueError, match="another statement"):
        Prepared("test_count_named", "SELECT %(label)s", [("label", "text")])


def test_placeholders_must_match_the_declared_parameters():
    with pytest.raises(ValueError, match="%\\(missing\\)s"):
        Prepared("bad", "SELECT %(present)s", [("present", "text"), ("missing", "text")])
    with pytest.raises(ValueError, match="no declared type"):
        Prepared("bad", "SELECT %(a)s, %(b)s", [("a", "text")])


NASTY = ["plain", "", " spaced ", 'quote"d', "back\\slash", "comma,brace{}", "NULL", "null",
         "ünïcødé ✓", "tab\tnew\nline", "\\\"", "'single'"]


def test_array_literals_round_trip_through_postgresql(db):
    import datetime as dt

    from medic.db import int_array, text_array, timestamp_array
    times = [dt.datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=dt.UTC),
             dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))), None]
    row = db.one("SELECT %(t)s::text[] AS t, %(i)s::bigint[] AS i, %(ts)s::timestamptz[] AS ts,"
                 " %(e)s::text[] AS e",
                 {"t": text_array([*NASTY, None]), "i": int_array([1, -2, 2**62]),
                  "ts": timestamp_array(times), "e": text_array([])})
    assert row == {"t": [*NASTY, None], "i": [1, -2, 2**62], "ts": times, "e": []}


def test_a_time_in_a_daylight_saving_fold_keeps_its_own_offset(db):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from medic.db import timestamp_array
    first = dt.datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second  # Python compares them equal: a memo must not merge them
    row = db.one("SELECT %s::timestamptz[] AS t", (timestamp_array([first, second]),))
    assert [t.astimezone(dt.UTC).hour for t in row["t"]] == [5, 6]
