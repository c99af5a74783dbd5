"""Services per condition (up, down, new, muted, inactive) and in all, read from
the rows that the triggers of migration 021 append on every change, instead of
counting the services table. ``fold`` turns those rows into one; the monitor
calls it with its gauges, so reads stay a sum over a few rows."""
from __future__ import annotations

from medic.db import Database, Row, Tx

COLUMNS = ("up", "down", "new", "muted", "inactive", "total")

READ = "SELECT " + ", ".join(f"coalesce(sum({c}), 0)::bigint AS {c}" for c in COLUMNS) + " FROM service_counts"

# Readers see the rows before or after, never between (one statement). Two folds
# at once are safe: the second skips the rows the first deleted, and its own
# snapshot does not see the first one's sum.
FOLD = f"""
    WITH folded AS (
        DELETE FROM service_counts WHERE (SELECT count(*) FROM service_counts) > 1 RETURNING *)
    INSERT INTO service_counts ({", ".join(COLUMNS)})
    SELECT {", ".join(f"sum({c})" for c in COLUMNS)} FROM folded HAVING count(*) > 0
"""


def read(tx: Tx | Database) -> Row:
    """Every count, 0 for none."""
    return tx.one(READ)


def fold(db: Database) -> None:
    db.execute(FOLD)
