"""What an audit event records: secrets redacted, actors cleaned, a service
change named by what it changed."""
from __future__ import annotations

import pytest

from medic import audit
from medic.interceptors import clean_actor
from services.heartbeat import history


def test_a_changed_secret_is_recorded_as_changed_and_never_its_value():
    before, after = audit.redact({"url": "u", "secret": "old", "config": {"routing_key": "k1"}},
                                 {"url": "u", "secret": "new", "config": {"routing_key": "k1"}},
                                 ("secret", "config.routing_key"))
    assert before == {"url": "u", "config": {}}
    assert after == {"url": "u", "secret": "changed", "config": {}}


@pytest.mark.parametrize("old, new, shown", [
    (None, "set", "changed"),      # a secret added
    ("gone", None, "changed"),     # a secret removed
    ("same", "same", None),        # unchanged: nothing shown
    (None, None, None),
])
def test_a_secret_shows_only_whether_it_changed(old, new, shown):
    before_doc = {} if old is None else {"secret": old}
    after_doc = {} if new is None else {"secret": new}
    _, after = audit.redact(before_doc, after_doc, ("secret",))
    assert after.get("secret") == shown


def test_a_creation_with_a_secret_shows_it_changed_and_a_deletion_shows_nothing():
    assert audit.redact(None, {"secret": "s"}, ("secret",)) == (None, {"secret": "changed"})
    assert audit.redact({"secret": "s"}, None, ("secret",)) == ({}, None)


@pytest.mark.parametrize("given, kept", [
    ("alice", "alice"), ("  alice  ", "alice"), ("Zoë Ü", "Zoë Ü"), ("x" * 255, "x" * 255),
    ("x" * 256, ""), ("a\nb", ""), ("a\x1b[31mb", ""), ("", ""), (None, ""),
])
def test_an_actor_is_kept_only_when_printable_and_at_most_255_characters(given, kept):
    assert clean_actor(given) == kept


def _service(**changes):
    row = {name: None for name in history.SETTINGS + history.STATE}
    row.update(active=True, muted=False, priority="p3", team="a", team_id=None, threshold=1)
    row.update(changes)
    return row


@pytest.mark.parametrize("changes, action", [
    ({"active": False}, "deactivate"), ({"muted": True}, "mute"), ({"priority": "p1"}, "priority_change"),
    ({"team": "b", "team_id": 3}, "team_change"), ({"threshold": 2}, "edit"),
    ({"muted": True, "active": False}, "edit"), ({}, "edit"), ({"state": "down"}, "edit"),
])
def test_a_service_change_is_named_by_what_it_changed(changes, action):
    assert history.action_type(_service(), _service(**changes)) == action


def test_reactivating_and_unmuting_are_named_too():
    assert history.action_type(_service(active=False), _service()) == "activate"
    assert history.action_type(_service(muted=True), _service()) == "unmute"


def test_the_remediation_action_types_are_accepted():
    for name in ("execution_started", "step_completed", "step_failed", "approval_requested", "approved",
                 "rejected", "execution_completed", "execution_failed"):
        assert name in audit.ACTION_TYPES


class NoCursor:
    def execute(self, sql, params=None):
        raise AssertionError("nothing may be written")


def test_an_unknown_action_type_is_a_programming_error():
    with pytest.raises(ValueError, match="ACTION_TYPES"):
        audit.record(NoCursor(), source="test", action_type="frobnicate", resource="x", resource_id=1)


# The table has no CHECK constraint (migration 023): medic.audit keeps its limits.
@pytest.mark.parametrize("event, refused", [
    ({"source": ""}, "plain word"),
    ({"resource": "x" * 65}, "plain word"),
    ({"resource": "team; DROP"}, "plain word"),
    ({"resource_id": "9" * 256}, "resource id"),
    ({"who": audit.Who(principal="key:k", actor="a" * 256)}, "actor"),
])
def test_what_the_table_would_refuse_is_refused_before_anything_is_written(event, refused):
    with pytest.raises(ValueError, match=refused):
        audit.record(NoCursor(), **{"source": "routing", "action_type": "update", "resource": "team",
                                    "resource_id": 1, "who": audit.SYSTEM, **event})


def test_a_statement_that_writes_its_own_event_refuses_a_word_that_is_not_plain():
    with pytest.raises(ValueError, match="plain word"):
        audit.inserted_by("changed", source="routing", action_type="update", resource="team'); --",
                          resource_id="team_id", before="NULL", after="NULL")


def test_who_params_refuse_an_over_long_actor():
    with pytest.raises(ValueError, match="actor"):
        audit.who_params(audit.Who(principal="key:k", actor="a" * 256))
    assert audit.who_params(audit.Who(principal="key:k", actor="a" * 255))["audit_actor"] == "a" * 255


def test_a_snapshot_of_an_unknown_action_is_refused():
    from services.heartbeat import snapshots

    service = _service(service_id=7, heartbeat_name="nightly")
    assert snapshots._row(service, "mute", snapshots.Related(), None, audit.SYSTEM)[2] == "mute"
    with pytest.raises(ValueError, match="SNAPSHOT_ACTIONS"):
        snapshots._row(service, "frobnicate", snapshots.Related(), None, audit.SYSTEM)
