"""The ``playbooks`` table."""
from __future__ import annotations

from psycopg2.extras import Json

from medic.db import Database, Row
from medic.errors import Conflict, NotFound
from services.remediation.playbook import Playbook
from services.remediation.triggers import TriggerRule

COLUMNS = """playbook_id, name, description, yaml, definition, approval, approval_timeout_minutes, version,
             service_pattern, consecutive_failures, created_at, updated_at"""

INSERT = f"""
    INSERT INTO playbooks (name, description, yaml, definition, approval, approval_timeout_minutes, version,
                           service_pattern, consecutive_failures)
    VALUES (%(name)s, %(description)s, %(yaml)s, %(definition)s, %(approval)s, %(approval_timeout_minutes)s,
            %(version)s, %(service_pattern)s, %(consecutive_failures)s)
    RETURNING {COLUMNS}
"""

UPDATE = f"""
    UPDATE playbooks SET name = %(name)s, description = %(description)s, yaml = %(yaml)s,
        definition = %(definition)s, approval = %(approval)s,
        approval_timeout_minutes = %(approval_timeout_minutes)s, version = %(version)s,
        service_pattern = %(service_pattern)s, consecutive_failures = %(consecutive_failures)s,
        updated_at = now()
    WHERE playbook_id = %(playbook_id)s
    RETURNING {COLUMNS}
"""

TRIGGERS = """
    SELECT playbook_id, service_pattern, consecutive_failures FROM playbooks
    WHERE service_pattern IS NOT NULL
"""


def _params(playbook: Playbook, document: str) -> dict:
    return {"name": playbook.name, "description": playbook.description, "yaml": document,
            "definition": Json(playbook.definition()), "approval": playbook.approval,
            "approval_timeout_minutes": playbook.approval_timeout_minutes, "version": playbook.version,
            "service_pattern": playbook.service_pattern,
            "consecutive_failures": playbook.consecutive_failures}


class PlaybookStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, playbook: Playbook, document: str) -> Row:
        try:
            return self.db.one(INSERT, _params(playbook, document))
        except Conflict:
            raise Conflict(f"a playbook named {playbook.name!r} already exists") from None

    def update(self, playbook_id: int, playbook: Playbook, document: str) -> Row:
        try:
            row = self.db.one(UPDATE, {**_params(playbook, document), "playbook_id": playbook_id})
        except Conflict:
            raise Conflict(f"a playbook named {playbook.name!r} already exists") from None
        if row is None:
            raise NotFound(f"no playbook with id {playbook_id}")
        return row

    def apply(self, playbook: Playbook, document: str) -> tuple[Row, bool]:
        """Creates it, or updates the playbook of that name: (row, created)."""
        existing = self.db.one("SELECT playbook_id FROM playbooks WHERE lower(name) = lower(%(n)s)",
                               {"n": playbook.name})
        if existing is None:
            return self.create(playbook, document), True
        return self.update(existing["playbook_id"], playbook, document), False

    def get(self, playbook_id: int) -> Row:
        row = self.db.one(f"SELECT {COLUMNS} FROM playbooks WHERE playbook_id = %(id)s", {"id": playbook_id})
        if row is None:
            raise NotFound(f"Playbook ID {playbook_id} not found.")
        return row

    def all(self) -> list[Row]:
        return self.db.all(f"SELECT {COLUMNS} FROM playbooks ORDER BY playbook_id")

    def delete(self, playbook_id: int) -> None:
        if not self.db.execute("DELETE FROM playbooks WHERE playbook_id = %(id)s", {"id": playbook_id}):
            raise NotFound(f"no playbook with id {playbook_id}")

    def trigger_rules(self) -> list[TriggerRule]:
        return [TriggerRule(r["playbook_id"], r["service_pattern"], r["consecutive_failures"])
                for r in self.db.all(TRIGGERS)]
