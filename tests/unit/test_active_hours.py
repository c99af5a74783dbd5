"""Working hours on notification targets: the maths (time zones, daylight
saving, midnight) and how routing uses them ("Slack in office hours, PagerDuty
always"; until-success moves past an inactive target). The clock is given, never
waited for: routing judges an event by when it happened."""
import datetime as dt

import pytest

from medic.errors import InvalidArgument
from services.routing import selection as rule
from services.routing.active_hours import parse
from services.routing.selection import AlertRoute, NotificationTarget, plan_route

UTC = dt.timezone.utc
OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00",
          "timezone": "Europe/Berlin"}


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def berlin(*args) -> dt.datetime:
    from zoneinfo import ZoneInfo
    return dt.datetime(*args, tzinfo=ZoneInfo("Europe/Berlin"))


def test_office_hours_in_berlin_winter_and_summer():
    hours = parse(OFFICE)
    assert hours.active_at(berlin(2026, 1, 13, 10, 0))           # Tuesday 10:00
    assert not hours.active_at(berlin(2026, 1, 13, 22, 0))       # Tuesday 22:00
    assert not hours.active_at(berlin(2026, 1, 17, 10, 0))       # Saturday
    assert hours.active_at(utc(2026, 1, 13, 8, 30))              # 09:30 CET
    assert not hours.active_at(utc(2026, 7, 14, 6, 30))          # 08:30 CEST
    assert hours.active_at(utc(2026, 7, 14, 7, 30))              # 09:30 CEST
    assert not hours.active_at(berlin(2026, 1, 13, 17, 0))       # "to" is exclusive
    assert hours.active_at(berlin(2026, 1, 13, 9, 0))            # "from" is inclusive


def test_hours_follow_new_york_across_its_spring_forward():
    hours = parse({"days": ["monday"], "from": "08:00", "to": "09:00", "timezone": "America/New_York"})
    assert hours.active_at(utc(2026, 3, 2, 13, 30))      # EST: 08:30
    assert not hours.active_at(utc(2026, 3, 9, 13, 30))  # EDT: 09:30
    assert hours.active_at(utc(2026, 3, 9, 12, 30))      # EDT: 08:30


def test_hours_crossing_midnight_belong_to_the_day_they_start():
    nights = parse({"days": ["fri"], "from": "22:00", "to": "06:00", "timezone": "UTC"})
    assert nights.active_at(utc(2026, 1, 9, 23, 0))       # Friday night
    assert nights.active_at(utc(2026, 1, 10, 5, 59))      # Saturday early morning
    assert not nights.active_at(utc(2026, 1, 10, 6, 0))
    assert not nights.active_at(utc(2026, 1, 9, 21, 0))
    assert not nights.active_at(utc(2026, 1, 12, 5, 0))   # Monday morning: Sunday is not listed
    assert not nights.active_at(utc(2026, 1, 10, 23, 0))  # Saturday night


def test_equal_from_and_to_is_the_whole_day():
    weekend = parse({"days": ["sat", "sunday"], "from": "00:00", "to": "00:00", "timezone": "Asia/Tokyo"})
    assert weekend.active_at(utc(2026, 1, 10, 3, 0))  # Saturday 12:00 in Tokyo
    assert not weekend.active_at(utc(2026, 1, 12, 3, 0))


@pytest.mark.parametrize("value, field", [
    ("9-5", "active_hours"),
    ({**OFFICE, "days": []}, "active_hours.days"),
    ({**OFFICE, "days": ["funday"]}, "active_hours.days"),
    ({**OFFICE, "from": "9am"}, "active_hours.from"),
    ({**OFFICE, "to": "24:00"}, "active_hours.to"),
    ({**OFFICE, "timezone": "Berlin"}, "active_hours.timezone"),
    ({**OFFICE, "zone": "UTC"}, "active_hours.zone"),
])
def test_bad_working_hours_are_refused_naming_the_field(value, field):
    with pytest.raises(InvalidArgument, match=field.replace(".", r"\.")):
        parse(value)


# --- routing by the hour ------------------------------------------------------------

SLACK_OFFICE = NotificationTarget(target_id=1, service_id=7, type=rule.SLACK, config={"channel_id": "COPS"},
                                  priority=0, enabled=True, active_hours=parse(OFFICE))
PAGERDUTY_ALWAYS = NotificationTarget(target_id=2, service_id=7, type=rule.PAGERDUTY,
                                      config={"routing_key": "R"}, priority=1, enabled=True)
PAGERDUTY_NIGHTS = NotificationTarget(
    target_id=3, service_id=7, type=rule.PAGERDUTY, config={"routing_key": "N"}, priority=2, enabled=True,
    active_hours=parse({"days": ["mon", "tue", "wed", "thu", "fri"], "from": "17:00", "to": "09:00",
                        "timezone": "Europe/Berlin"}))
TEN_AM = berlin(2026, 1, 13, 10, 0)
TEN_PM = berlin(2026, 1, 13, 22, 0)


def plan(at, mode="all", kind=rule.TRIGGER, targets=(SLACK_OFFICE, PAGERDUTY_ALWAYS), route=None):
    return plan_route(kind=kind, targets=list(targets), team=None, default_channel="", service_mode=mode,
                      route=route, at=at)


def test_office_hours_slack_and_always_pagerduty_at_ten_in_the_morning_and_at_night():
    morning = plan(TEN_AM)
    assert [t.target_id for t in morning.targets] == [1, 2] and morning.outside_hours == ()
    night = plan(TEN_PM)
    assert [t.target_id for t in night.targets] == [2]
    assert [t.target_id for t in night.outside_hours] == [1]
    assert [t.target_id for t in night.route] == [1, 2]  # the alert's route keeps both
    assert not night.unrouted


def test_pagerduty_only_out_of_hours():
    targets = (SLACK_OFFICE, PAGERDUTY_NIGHTS)
    assert [t.target_id for t in plan(TEN_AM, targets=targets).targets] == [1]
    assert [t.target_id for t in plan(TEN_PM, targets=targets).targets] == [3]


def test_until_success_moves_past_a_target_outside_its_hours():
    night = plan(TEN_PM, mode="until_success")
    assert night.mode == "until_success" and [t.target_id for t in night.targets] == [2]


def test_reminders_follow_the_hours_and_the_resolve_goes_to_the_whole_route():
    first = plan(TEN_AM)
    route = AlertRoute(mode=first.mode, targets=first.route)
    reminder = plan(TEN_PM, kind=rule.REMINDER, route=route)
    assert [t.target_id for t in reminder.targets] == [2] and reminder.source == rule.SOURCE_ALERT_ROUTE
    resolve = plan(TEN_PM, kind=rule.RESOLVE, route=route)
    assert [t.target_id for t in resolve.targets] == [1, 2]


def test_acknowledgement_goes_to_the_routes_pagerduty_targets_only():
    route = AlertRoute(mode="all", targets=plan(TEN_AM).route)
    ack = plan(TEN_PM, kind="acknowledge", route=route)
    assert [t.target_id for t in ack.targets] == [2] and ack.subscriptions == ()
    assert plan(TEN_PM, kind="acknowledge").targets == ()


def test_without_a_time_every_target_is_sent():
    assert [t.target_id for t in plan(None).targets] == [1, 2]
