"""How the console turns form fields into RPC fields and service messages into field errors."""
import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from gateway.console import forms, present
from medic.v1 import common_pb2


def test_register_fields_are_typed_and_bad_shapes_are_named_beside_their_field():
    form = forms.Form(values={"heartbeat_name": " web ", "service_name": "Web", "alert_interval_seconds": "60",
                              "threshold": "two", "grace_period_seconds": "", "team": "", "priority": "p9",
                              "runbook": "", "notify_mode": "until_success"})
    fields = forms.service_fields(form, required=True)
    assert fields["heartbeat_name"] == "web" and fields["alert_interval_seconds"] == 60
    assert fields["notify_mode"] == common_pb2.NOTIFY_MODE_UNTIL_SUCCESS
    assert "grace_period_seconds" not in fields  # empty: the service's default
    assert form.errors == {"threshold": "threshold must be a whole number",
                           "priority": "priority must be one of p1, p2, p3, p4, p5"}


def test_a_missing_interval_is_required_only_when_registering():
    register, update = forms.Form(values={"alert_interval_seconds": ""}), forms.Form(values={"alert_interval_seconds": ""})
    forms.service_fields(register, required=True)
    forms.service_fields(update, required=False)
    assert register.errors == {"alert_interval_seconds": "alert_interval_seconds is required"}
    assert update.errors == {}


def test_emptied_job_settings_clear_them_and_bad_numbers_are_named_beside_their_field():
    form = forms.Form(values={"schedule": " 30 9 * * 1-5 ", "timezone": "", "max_duration_seconds": "",
                              "min_duration_seconds": "ten", "failure_tolerance": "2"})
    assert forms.job_fields(form) == {"schedule": "30 9 * * 1-5", "timezone": "", "max_duration_seconds": 0,
                                      "failure_tolerance": 2}
    assert form.errors == {"min_duration_seconds": "min_duration_seconds must be a whole number"}


def test_a_service_message_goes_beside_the_field_it_names_else_above_the_form():
    form = forms.Form(values={"name": "", "threshold": "0"})
    form.error_from_service("threshold must be >= 1")
    form.error_from_service("name: 1-255 characters required")
    form.error_from_service("heartbeat 'x' is not registered")
    assert form.errors == {"threshold": "threshold must be >= 1", "name": "name: 1-255 characters required"}
    assert form.message == "heartbeat 'x' is not registered"


def test_durations_read_like_a_person_would_say_them():
    assert [present.duration(s) for s in (0, 59, 61, 600, 3600, 5400, 86400 * 3 + 3600)] == [
        "0 s", "59 s", "1 min 1 s", "10 min", "1 h", "1 h 30 min", "3 d 1 h"]


def test_times_carry_utc_in_the_tooltip_and_the_iso_time_for_the_browser():
    ts = Timestamp()
    ts.FromDatetime(dt.datetime(2026, 12, 6, 23, 5, 9, tzinfo=dt.timezone.utc))
    assert str(present.time_tag(ts)) == ('<time datetime="2026-12-06T23:05:09Z" title="2026-12-06 23:05:09 UTC" '
                                         'data-local>2026-12-06 23:05:09 UTC</time>')
    assert "never" in str(present.time_tag(Timestamp()))
