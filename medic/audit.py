"""The audit log: one event for every change, written by the service that makes
the change, in the transaction of the change.

How a change gets audited (docs/architecture.md, "The audit log"):

1. its RPC declares ``option (audit) = AUDIT_RULE_RECORDED;`` in its ``.proto``
   (a method with the write or admin scope must declare a rule; the coverage
   test, ``tests/integration/test_audit_coverage.py``, fails otherwise and
   needs a case that calls the RPC);
2. the store that makes the change calls ``record(tx, ...)`` with the
   transaction's ``Tx`` (or a psycopg2 cursor) *before* it commits, so the
   change and its event commit together or not at all;
3. ``before`` / ``after`` are plain dicts of what a person would call the
   resource's settings; fields named in ``secrets`` never reach the table
   (``redact``): a secret that changed is recorded as ``"changed"``.

Who acted comes from the call's identity (``medic.interceptors.current_identity``):
the API key's id and name, and the caller's ``X-Actor`` / ``x-medic-actor``
(``clean_actor``: printable, at most 255 characters, otherwise ignored). Work
that no caller started (a remediation run, the monitor) passes ``who=SYSTEM``.

``ACTION_TYPES`` is every action type the log accepts as a filter; a new kind of
change adds its words here.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg2.extras

from medic.interceptors import Identity, current_identity
from medic.logs import request_id_var

# What changed about a service (the original's snapshot action types, plus
# register and restore).
SERVICE_ACTIONS = ("register", "edit", "activate", "deactivate", "mute", "unmute", "priority_change",
                   "team_change", "bulk_edit", "delete", "restore")
# Any other resource.
GENERIC_ACTIONS = ("create", "update", "delete", "revoke", "set_rate_limits", "retry", "acknowledge")
# A remediation run's steps (the original's audit log), a cancel, and a trip of
# the remediation circuit breaker (services/remediation/events.py, breaker.py).
REMEDIATION_ACTIONS = ("execution_started", "step_completed", "step_failed", "approval_requested",
                       "approved", "rejected", "execution_completed", "execution_failed", "cancelled",
                       "circuit_breaker_tripped")
ACTION_TYPES: tuple[str, ...] = tuple(dict.fromkeys(SERVICE_ACTIONS + GENERIC_ACTIONS + REMEDIATION_ACTIONS))

# Service actions that take a snapshot first (the original's list: every
# destructive change; a restore too, so that an undo can be undone).
SNAPSHOT_ACTIONS = ("edit", "activate", "deactivate", "mute", "unmute", "priority_change", "team_change",
                    "bulk_edit", "delete", "restore")

CHANGED = "changed"  # what a changed secret is recorded as


@dataclass(frozen=True)
class Who:
    """Who made a change, as the log records it."""
    principal: str           # key:<id>, ip:<addr>, medic (the service credential)
    key_id: str | None = None
    key_name: str | None = None
    actor: str | None = None  # the caller's own X-Actor, when given

    @classmethod
    def of(cls, identity: Identity) -> "Who":
        key_id = identity.principal.removeprefix("key:") if identity.principal.startswith("key:") else None
        return cls(principal=identity.principal, key_id=key_id, key_name=identity.name or None,
                   actor=identity.actor or None)

    @property
    def label(self) -> str:
        """One string for people: the actor, else the key's name, else the principal."""
        return self.actor or self.key_name or self.principal


SYSTEM = Who(principal="medic", key_name="medic")


def current_who() -> Who:
    return Who.of(current_identity())


class Cursor(Protocol):
    def execute(self, sql: str, params: Any = None) -> Any: ...


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_dumps = functools.partial(json.dumps, default=_json_default, sort_keys=True)


def as_json(value: Any) -> Any:
    """``value`` as JSON-ready data (times as ISO strings), for comparison and storage."""
    return None if value is None else json.loads(_dumps(value))


def _path_get(doc: Mapping[str, Any] | None, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(doc, Mapping) or part not in doc:
            return False, None
        doc = doc[part]
    return True, doc


def _path_drop(doc: dict[str, Any], path: tuple[str, ...]) -> None:
    for part in path[:-1]:
        doc = doc.get(part)
        if not isinstance(doc, dict):
            return
    doc.pop(path[-1], None)


def _path_set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc.setdefault(part, {})
    doc[path[-1]] = value


def redact(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
           secrets: Iterable[str] = ()) -> tuple[dict | None, dict | None]:
    """``before`` and ``after`` without their secrets. ``secrets`` are dotted
    paths (``secret``, ``config.routing_key``); a secret is never kept, and one
    whose value differs between before and after (set, replaced, removed) shows
    as ``"changed"`` in ``after``."""
    before_doc = as_json(before)
    after_doc = as_json(after)
    for dotted in secrets:
        path = tuple(dotted.split("."))
        had, old = _path_get(before_doc, path)
        has, new = _path_get(after_doc, path)
        if before_doc is not None:
            _path_drop(before_doc, path)
        if after_doc is not None:
            _path_drop(after_doc, path)
            if (had or has) and (had, old) != (has, new) and (old or new):
                _path_set(after_doc, path, CHANGED)
    return before_doc, after_doc


INSERT_EVENT = """
    INSERT INTO audit_events (source, action_type, resource, resource_id, service_id, execution_id,
                              principal, key_id, key_name, actor, request_id, bulk_id,
                              before, after, details)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


INSERT_EVENTS = """
    INSERT INTO audit_events (source, action_type, resource, resource_id, service_id, execution_id,
                              principal, key_id, key_name, actor, request_id, bulk_id,
                              before, after, details)
    VALUES %s
"""


# The table's limits, kept here: a CHECK constraint would cost every audited
# change (migration 023).
WORD_MAX = 64
TEXT_MAX = 255  # a resource id, an actor


def _check_words(source: str, action_type: str, resource: str) -> None:
    """``source``, ``action_type`` and ``resource`` are the code's own plain words."""
    if action_type not in ACTION_TYPES:
        raise ValueError(f"unknown audit action type {action_type!r}: add it to medic.audit.ACTION_TYPES")
    for word in (source, action_type, resource):
        if not (word.replace("_", "").isalnum() and len(word) <= WORD_MAX):
            raise ValueError(f"{word!r} is not a plain word of at most {WORD_MAX} characters")


def _check_who(who: Who) -> None:
    if who.actor and len(who.actor) > TEXT_MAX:
        raise ValueError(f"an actor is at most {TEXT_MAX} characters")


def _jsonb(value: Any) -> Any:
    return None if value is None else psycopg2.extras.Json(value, dumps=_dumps)


def _row(*, source: str, action_type: str, resource: str, resource_id: Any,
         before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
         secrets: Iterable[str] = (), service_id: int | None = None, execution_id: int | None = None,
         bulk_id: uuid.UUID | str | None = None, details: Mapping[str, Any] | None = None,
         who: Who | None = None) -> tuple:
    _check_words(source, action_type, resource)
    who = who or current_who()
    _check_who(who)
    resource_id = str(resource_id)
    if len(resource_id) > TEXT_MAX:
        raise ValueError(f"a resource id is at most {TEXT_MAX} characters")
    before_doc, after_doc = redact(before, after, secrets)
    return (source, action_type, resource, resource_id, service_id, execution_id,
            who.principal, who.key_id, who.key_name, who.actor, request_id_var.get() or None,
            None if bulk_id is None else str(bulk_id), _jsonb(before_doc), _jsonb(after_doc),
            _jsonb(as_json(details) if details is not None else None))


def record(tx: Cursor, *, source: str, action_type: str, resource: str, resource_id: Any,
           before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
           secrets: Iterable[str] = (), service_id: int | None = None,
           execution_id: int | None = None, bulk_id: uuid.UUID | str | None = None,
           details: Mapping[str, Any] | None = None, who: Who | None = None) -> None:
    """Writes one audit event with ``tx`` (the change's own transaction: call it
    before the commit; a ``medic.db.Tx`` sends it with its COMMIT). ``source``: the writing service (``heartbeat``, ``auth``,
    ...). ``resource`` / ``resource_id``: what changed (``service`` / its id).
    ``who``: default, the current call's identity."""
    row = _row(
        source=source, action_type=action_type, resource=resource, resource_id=resource_id, before=before,
        after=after, secrets=secrets, service_id=service_id, execution_id=execution_id, bulk_id=bulk_id,
        details=details, who=who)
    if getattr(tx, "began", False):  # a medic.db.Tx: sent with the COMMIT, no round trip of its own
        tx.before_commit(INSERT_EVENT, row)
    else:
        tx.execute(INSERT_EVENT, row)


# Who made the change, as parameters of ``inserted_by`` (SQL type of each, for ``medic.db.Prepared``).
WHO_PARAMS = (("audit_principal", "text"), ("audit_key_id", "text"), ("audit_key_name", "text"),
              ("audit_actor", "text"), ("audit_request_id", "text"))


def who_params(who: Who | None = None) -> dict[str, Any]:
    """The values of ``WHO_PARAMS`` for the current call (or ``who``)."""
    who = who or current_who()
    _check_who(who)
    return {"audit_principal": who.principal, "audit_key_id": who.key_id, "audit_key_name": who.key_name,
            "audit_actor": who.actor, "audit_request_id": request_id_var.get() or None}


def inserted_by(rows: str, *, source: str, action_type: str, resource: str, resource_id: str,
                before: str, after: str) -> str:
    """An ``INSERT`` of one event per row of ``rows`` (the name of a
    data-modifying CTE that makes the change), for the same statement: the
    change and its event are one statement, one round trip, one plan, and an
    event exists exactly when a row changed. ``resource_id``, ``before`` and
    ``after`` are SQL expressions over ``rows`` (``jsonb_build_object(...)``
    of a resource without secrets); ``source``, ``action_type`` and
    ``resource`` are the code's own words, never a caller's. Who acted comes
    from ``who_params()``. ``resource_id`` is not length-checked here (the table
    does not check it either): make it an id of the changed row."""
    _check_words(source, action_type, resource)
    return f"""
        INSERT INTO audit_events (source, action_type, resource, resource_id, principal, key_id, key_name,
                                  actor, request_id, before, after)
        SELECT '{source}', '{action_type}', '{resource}', ({resource_id})::text, %(audit_principal)s,
               %(audit_key_id)s, %(audit_key_name)s, %(audit_actor)s, %(audit_request_id)s, {before}, {after}
        FROM {rows}
    """


def record_many(tx: Cursor, events: Iterable[Mapping[str, Any]]) -> None:
    """``record`` for many events (each a mapping of ``record``'s keyword
    arguments) in one statement when ``tx`` is a ``medic.db.Tx``: a bulk change
    of thousands of services costs one round trip for its events."""
    rows = [_row(**event) for event in events]
    if hasattr(tx, "values"):
        tx.values(INSERT_EVENTS, rows)
        return
    for row in rows:
        tx.execute(INSERT_EVENT, row)
