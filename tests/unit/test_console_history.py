"""What the console's history and remediation pages show, from the answers of the RPCs."""
from medic.v1 import remediation_pb2
from gateway.console.changes import changed_fields
from gateway.console.playbooks import problem_text
from gateway.console.present import snapshot_summary
from gateway.console.session import CookieCodec


def test_an_update_shows_only_the_fields_it_changed():
    before = {"alert_interval_seconds": 60, "muted": False, "team": "ops"}
    after = {"alert_interval_seconds": 120, "muted": False, "team": "ops"}
    assert changed_fields(before, after) == [("alert_interval_seconds", "60", "120")]
    assert changed_fields({"muted": False}, {"muted": True, "mute_reason": "deploy"}) == [
        ("mute_reason", "null", '"deploy"'), ("muted", "false", "true")]


def test_a_creation_or_deletion_has_no_changed_fields_to_list():
    assert changed_fields(None, {"name": "ops"}) == []
    assert changed_fields({"name": "ops"}, None) == []


def test_a_snapshot_reads_as_its_interval_threshold_and_flags():
    data = {"alert_interval_seconds": 60, "threshold": 2, "active": True, "muted": True, "team": "payments",
            "priority": "p2", "targets": []}
    assert snapshot_summary(data) == "every 60 s · threshold 2 · active · muted · team payments · priority p2"
    assert snapshot_summary({}) == ""


def test_playbook_problems_are_worded_as_the_api_words_them():
    assert problem_text(remediation_pb2.PlaybookError(line=7, field="steps[0].url", message="`url` is required")) \
        == "line 7, steps[0].url: `url` is required"
    assert problem_text(remediation_pb2.PlaybookError(line=0, field="", message="the document is empty")) \
        == "document: the document is empty"


def test_a_flash_carries_the_path_that_undoes_it():
    codec = CookieCodec("mds_one")
    assert codec.read_flash(codec.flash("Muted 2 services.", undo="/ui/bulk/abc/undo")) == (
        "Muted 2 services.", "ok", "/ui/bulk/abc/undo")
    assert codec.read_flash(codec.flash("Saved.")) == ("Saved.", "ok", "")
