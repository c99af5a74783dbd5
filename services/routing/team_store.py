"""Teams (``teams``): a name and, optionally, the Slack channel that hears about
the alerts of the team's services when they have no targets of their own.

Deleting a team clears its services' ``team_id`` (foreign key, ON DELETE SET
NULL), so no statement here touches another service's table.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from medic import audit
from medic.db import Database, Prepared, Row, Tx, set_clause
from medic.errors import NotFound
from services.routing.selection import Team

TEAM_COLUMNS = "team_id, name, slack_channel_id, created_at, updated_at"

INSERT_TEAM = f"""
    INSERT INTO teams (name, slack_channel_id) VALUES (%(name)s, %(slack_channel_id)s)
    RETURNING {TEAM_COLUMNS}
"""
SELECT_TEAM_BY_ID = f"SELECT {TEAM_COLUMNS} FROM teams WHERE team_id = %s"
SELECT_TEAM_FOR_UPDATE = SELECT_TEAM_BY_ID + " FOR UPDATE"
SELECT_TEAM_BY_NAME = f"SELECT {TEAM_COLUMNS} FROM teams WHERE lower(name) = lower(%s)"
LIST_TEAMS = f"SELECT {TEAM_COLUMNS} FROM teams ORDER BY team_id"
DELETE_TEAM = f"DELETE FROM teams WHERE team_id = %s RETURNING {TEAM_COLUMNS}"
SELECT_TEAMS_BY_ID = f"SELECT {TEAM_COLUMNS} FROM teams WHERE team_id = ANY(%s)"
# Each asked name with the team it names (case-insensitive, as SELECT_TEAM_BY_NAME).
SELECT_TEAMS_BY_NAME = """
    SELECT n.asked, t.team_id, t.name, t.slack_channel_id, t.created_at, t.updated_at
    FROM unnest(%s::text[]) AS n (asked) JOIN teams t ON lower(t.name) = lower(n.asked)
"""

TEAM_FIELDS = ("name", "slack_channel_id")
AUDITED = ("team_id", "name", "slack_channel_id")


# A team's audited settings as JSON, in SQL: in an UPDATE's SET, the team as it was.
TEAM_JSON = "jsonb_build_object(" + ", ".join(f"'{k}', {k}" for k in AUDITED) + ")"


@functools.lru_cache(maxsize=None)
def _update_statement(columns: tuple[str, ...]) -> Prepared:
    """The update of ``columns`` (of TEAM_FIELDS, in that order) and its audit
    event, as one prepared statement, one round trip.

    The team as it was comes from the update itself: PostgreSQL before 18
    cannot return the old row from an ``UPDATE``, but a ``SET`` expression sees
    it, so the update keeps it in ``audit_before`` and returns it. Under a
    concurrent update the ``SET`` is evaluated again on the row it finally
    replaces, so ``before`` is always what this change overwrote. A read of the
    row under lock joined to the update cost UpdateTeam ~20 µs more
    (docs/performance.md, "Audit overhead")."""
    assignments = set_clause(columns, TEAM_FIELDS)
    event = audit.inserted_by("changed", source="routing", action_type="update", resource="team",
                              resource_id="team_id", before="audit_before", after=TEAM_JSON)
    sql = f"""
        WITH changed AS (
            UPDATE teams SET {assignments}, updated_at = now(), audit_before = {TEAM_JSON}
            WHERE team_id = %(team_id)s
            RETURNING {TEAM_COLUMNS}, audit_before
        ), event AS ({event})
        SELECT {TEAM_COLUMNS} FROM changed
    """
    params = [("team_id", "bigint"), *((c, "text") for c in columns), *audit.WHO_PARAMS]
    return Prepared("medic_update_team_" + "_".join(columns), sql, params)


def _audit(tx: Tx, action: str, team_id: int, before: Row | None, after: Row | None) -> None:
    audit.record(tx, source="routing", action_type=action, resource="team", resource_id=team_id,
                 before=None if before is None else {k: before[k] for k in AUDITED},
                 after=None if after is None else {k: after[k] for k in AUDITED})


def team_from_row(row: Row) -> Team:
    return Team(team_id=row["team_id"], name=row["name"], slack_channel_id=row["slack_channel_id"])


def teams_by_id(tx: Tx, team_ids: Sequence[int]) -> dict[int, Team]:
    return {r["team_id"]: team_from_row(r) for r in tx.all(SELECT_TEAMS_BY_ID, (list(team_ids),))}


def teams_by_name(tx: Tx, names: Sequence[str]) -> dict[str, Team]:
    """Each name that names a team (as asked) -> the team."""
    return {r["asked"]: team_from_row(r) for r in tx.all(SELECT_TEAMS_BY_NAME, (list(names),))}


class TeamStore:
    def __init__(self, db: Database):
        self.db = db

    def create_team(self, name: str, slack_channel_id: str | None) -> Row:
        with self.db.transaction() as tx:
            row = tx.one(INSERT_TEAM, {"name": name, "slack_channel_id": slack_channel_id})
            _audit(tx, "create", row["team_id"], None, row)
            return row

    def team(self, team_id: int) -> Row:
        row = self.db.one(SELECT_TEAM_BY_ID, (team_id,))
        if row is None:
            raise NotFound(f"team {team_id} not found")
        return row

    def team_by_name(self, name: str) -> Row:
        row = self.db.one(SELECT_TEAM_BY_NAME, (name,))
        if row is None:
            raise NotFound(f"team {name!r} not found")
        return row

    def teams(self) -> list[Row]:
        return self.db.all(LIST_TEAMS)

    def update_team(self, team_id: int, fields: Mapping[str, Any]) -> Row:
        columns = tuple(c for c in TEAM_FIELDS if c in fields)
        if columns:
            # One statement, committed on its own: the change and its event, or neither.
            row = self.db.one(_update_statement(columns), {**fields, "team_id": team_id, **audit.who_params()})
        else:
            with self.db.transaction() as tx:
                row = tx.one(SELECT_TEAM_FOR_UPDATE, (team_id,))
                if row is not None:
                    _audit(tx, "update", team_id, row, row)
        if row is None:
            raise NotFound(f"team {team_id} not found")
        return row

    def delete_team(self, team_id: int) -> None:
        with self.db.transaction() as tx:
            row = tx.one(DELETE_TEAM, (team_id,))
            if row is None:
                raise NotFound(f"team {team_id} not found")
            _audit(tx, "delete", team_id, row, None)

