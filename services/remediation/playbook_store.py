"""The ``playbooks`` table; each change writes its audit event (``medic.audit``)
in its transaction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg2.extras import Json

from medic import audit
from medic.db import Database, Row, Tx
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

DELETE = f"DELETE FROM playbooks WHERE playbook_id = %(id)s RETURNING {COLUMNS}"

TRIGGERS = """
    SELECT playbook_id, name, definition, approval, approval_timeout_minutes, service_pattern,
           consecutive_failures
    FROM playbooks WHERE service_pattern IS NOT NULL
"""


def _params(playbook: Playbook, document: str) -> dict:
    return {"name": playbook.name, "description": playbook.description, "yaml": document,
            "definition": Json(playbook.definition()), "approval": playbook.approval,
            "approval_timeout_minutes": playbook.approval_timeout_minutes, "version": playbook.version,
            "service_pattern": playbook.service_pattern,
            "consecutive_failures": playbook.consecutive_failures}


@dataclass(frozen=True)
class TriggerPlaybooks:
    rules: list[TriggerRule]
    playbooks: dict[int, Row]


# A webhook step's header values often are credentials (Authorization: Bearer ...):
# the audit log names the headers and records a change of their values as "changed".
HEADER_VALUES = "step_header_values"


def audited(row: Row) -> dict[str, Any]:
    """A playbook as the audit log records it: its settings and steps, without
    its steps' header values."""
    definition = row["definition"]
    steps, header_values = [], {}
    for index, step in enumerate(definition["steps"]):
        headers = step.get("headers") or {}
        steps.append({**{k: v for k, v in step.items() if k != "headers"},
                      **({"headers": sorted(headers)} if headers else {})})
        header_values.update({f"{index}.{name}": value for name, value in headers.items()})
    return {"playbook_id": row["playbook_id"], "name": row["name"], "description": row["description"],
            "approval": row["approval"], "approval_timeout_minutes": row["approval_timeout_minutes"],
            "version": row["version"], "service_pattern": row["service_pattern"],
            "consecutive_failures": row["consecutive_failures"], "steps": steps, HEADER_VALUES: header_values}


def _audit(tx: Tx, action: str, before: Row | None, after: Row | None) -> None:
    row = after or before
    audit.record(tx, source="remediation", action_type=action, resource="playbook", resource_id=row["playbook_id"],
                 before=None if before is None else audited(before), after=None if after is None else audited(after),
                 secrets=(HEADER_VALUES,))


class PlaybookStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, playbook: Playbook, document: str) -> Row:
        try:
            with self.db.transaction() as tx:
                row = tx.one(INSERT, _params(playbook, document))
                _audit(tx, "create", None, row)
        except Conflict:
            raise Conflict(f"a playbook named {playbook.name!r} already exists") from None
        return row

    def update(self, playbook_id: int, playbook: Playbook, document: str) -> Row:
        try:
            with self.db.transaction() as tx:
                before = tx.one(f"SELECT {COLUMNS} FROM playbooks WHERE playbook_id = %(id)s FOR UPDATE",
                                {"id": playbook_id})
                if before is None:
                    raise NotFound(f"no playbook with id {playbook_id}")
                row = tx.one(UPDATE, {**_params(playbook, document), "playbook_id": playbook_id})
                _audit(tx, "update", before, row)
        except Conflict:
            raise Conflict(f"a playbook named {playbook.name!r} already exists") from None
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
        with self.db.transaction() as tx:
            before = tx.one(DELETE, {"id": playbook_id})
            if before is None:
                raise NotFound(f"no playbook with id {playbook_id}")
            _audit(tx, "delete", before, None)

    def trigger_playbooks(self) -> TriggerPlaybooks:
        """The trigger rules, and the playbooks they start (read once per batch of alert events)."""
        rows = self.db.all(TRIGGERS)
        return TriggerPlaybooks([TriggerRule(r["playbook_id"], r["service_pattern"], r["consecutive_failures"])
                                 for r in rows], {r["playbook_id"]: r for r in rows})
