"""Target selection (docs/domain.md, "Who hears about an alert"): order, ties, disabled targets, each
fallback level, modes, subscriptions and the alert's remembered route."""
from __future__ import annotations

from services.routing import selection as rule
from services.routing.selection import (AlertRoute, NotificationTarget, PlannedTarget, Team,
                                        plan_route)

SERVICE = 7


def target(target_id, priority=0, enabled=True, type_=rule.SLACK, config=None):
    config = config or {"channel_id": f"C{target_id}"}
    return NotificationTarget(target_id=target_id, service_id=SERVICE, type=type_, config=config,
                              priority=priority, enabled=enabled)


def webhook(webhook_id):
    return PlannedTarget(type=rule.WEBHOOK, config={"url": f"https://hooks.example/{webhook_id}"},
                         webhook_id=webhook_id)


TEAM = Team(team_id=3, name="payments", slack_channel_id="CTEAM")
NO_CHANNEL_TEAM = Team(team_id=4, name="quiet", slack_channel_id=None)


def plan(**kwargs):
    args = {"kind": rule.TRIGGER, "targets": [], "team": None, "default_channel": ""}
    args.update(kwargs)
    return plan_route(**args)


def ids(p):
    return [t.target_id for t in p.targets]


def test_enabled_targets_go_in_priority_order_lowest_first():
    p = plan(targets=[target(1, priority=20), target(2, priority=5), target(3, priority=10)])
    assert ids(p) == [2, 3, 1]
    assert p.source == rule.SOURCE_SERVICE_TARGETS
    assert not p.unrouted


def test_targets_with_equal_priority_are_ordered_by_target_id():
    p = plan(targets=[target(9, priority=1), target(4, priority=1), target(6, priority=0),
                      target(5, priority=1)])
    assert ids(p) == [6, 4, 5, 9]


def test_disabled_targets_are_skipped_and_reported():
    p = plan(targets=[target(1, enabled=False, priority=0), target(2, priority=5),
                      target(3, enabled=False, priority=9)])
    assert ids(p) == [2]
    assert [t.target_id for t in p.skipped] == [1, 3]


def test_planned_targets_carry_type_and_config_of_their_target():
    pd = target(1, type_=rule.PAGERDUTY, config={"routing_key": "R" * 32})
    p = plan(targets=[pd])
    assert p.targets == (PlannedTarget(type=rule.PAGERDUTY, config={"routing_key": "R" * 32},
                                       target_id=1),)


def test_service_targets_win_over_the_team_channel():
    p = plan(targets=[target(1)], team=TEAM, default_channel="CDEFAULT")
    assert ids(p) == [1]


def test_without_targets_the_team_channel_is_used():
    p = plan(team=TEAM, default_channel="CDEFAULT")
    assert p.source == rule.SOURCE_TEAM_CHANNEL
    assert p.targets == (PlannedTarget(type=rule.SLACK, config={"channel_id": "CTEAM"}),)


def test_only_disabled_targets_fall_back_to_the_team_channel_and_report_them():
    p = plan(targets=[target(1, enabled=False)], team=TEAM)
    assert p.source == rule.SOURCE_TEAM_CHANNEL
    assert [t.target_id for t in p.skipped] == [1]


def test_without_team_channel_the_default_channel_is_used():
    for team in (None, NO_CHANNEL_TEAM, Team(team_id=5, name="blank", slack_channel_id="  ")):
        p = plan(team=team, default_channel="CDEFAULT")
        assert p.source == rule.SOURCE_DEFAULT_CHANNEL
        assert p.targets == (PlannedTarget(type=rule.SLACK, config={"channel_id": "CDEFAULT"}),)
        assert p.targets[0].target_id == 0


def test_with_nothing_configured_the_event_is_unrouted():
    p = plan(team=NO_CHANNEL_TEAM, default_channel="")
    assert p.source == rule.SOURCE_UNROUTED
    assert p.unrouted
    assert p.targets == ()
    assert not p.has_recipients


def test_subscriptions_are_added_whatever_the_fallback_level_once_each_by_id():
    subs = [webhook(8), webhook(2), webhook(8)]
    for kwargs in ({"targets": [target(1)]}, {"team": TEAM}, {"default_channel": "C"}, {}):
        p = plan(subscriptions=subs, **kwargs)
        assert [s.webhook_id for s in p.subscriptions] == [2, 8]


def test_unrouted_event_with_subscriptions_still_has_recipients():
    p = plan(subscriptions=[webhook(1)])
    assert p.unrouted
    assert p.has_recipients


def test_notify_all_plan_lists_every_enabled_target_in_order():
    p = plan(targets=[target(1, priority=2), target(2, priority=1)], service_mode=rule.NOTIFY_ALL)
    assert p.mode == rule.NOTIFY_ALL
    assert ids(p) == [2, 1]


def test_notify_until_success_plan_is_the_same_ordered_chain_in_that_mode():
    p = plan(targets=[target(1, priority=2), target(2, priority=1)],
             service_mode=rule.NOTIFY_UNTIL_SUCCESS)
    assert p.mode == rule.NOTIFY_UNTIL_SUCCESS
    assert ids(p) == [2, 1]


def test_service_without_mode_notifies_all():
    assert plan(targets=[target(1)], service_mode=None).mode == rule.NOTIFY_ALL


def test_mode_override_wins_over_the_service_mode():
    p = plan(targets=[target(1)], service_mode=rule.NOTIFY_ALL,
             mode_override=rule.NOTIFY_UNTIL_SUCCESS)
    assert p.mode == rule.NOTIFY_UNTIL_SUCCESS


ROUTE = AlertRoute(mode=rule.NOTIFY_UNTIL_SUCCESS,
                   targets=(PlannedTarget(type=rule.PAGERDUTY, config={"routing_key": "OLD"},
                                          target_id=11),
                            PlannedTarget(type=rule.SLACK, config={"channel_id": "COLD"},
                                          target_id=12)))


def test_reminder_goes_to_the_targets_the_trigger_went_to_even_after_targets_changed():
    p = plan(kind=rule.REMINDER, targets=[target(99)], team=TEAM, route=ROUTE,
             service_mode=rule.NOTIFY_ALL)
    assert p.source == rule.SOURCE_ALERT_ROUTE
    assert p.targets == ROUTE.targets
    assert p.skipped == ()
    # Reminders escalate like the TRIGGER did.
    assert p.mode == rule.NOTIFY_UNTIL_SUCCESS


def test_resolve_goes_to_every_target_the_trigger_went_to():
    p = plan(kind=rule.RESOLVE, route=ROUTE, service_mode=rule.NOTIFY_UNTIL_SUCCESS)
    assert p.targets == ROUTE.targets
    assert p.mode == rule.NOTIFY_ALL


def test_resolve_honours_an_explicit_mode_override():
    p = plan(kind=rule.RESOLVE, route=ROUTE, mode_override=rule.NOTIFY_UNTIL_SUCCESS)
    assert p.mode == rule.NOTIFY_UNTIL_SUCCESS


def test_remembered_route_keeps_subscriptions_current():
    p = plan(kind=rule.REMINDER, route=ROUTE, subscriptions=[webhook(5)])
    assert [s.webhook_id for s in p.subscriptions] == [5]


def test_reminder_of_an_alert_never_routed_chooses_afresh():
    p = plan(kind=rule.REMINDER, team=TEAM, route=None)
    assert p.source == rule.SOURCE_TEAM_CHANNEL


def test_a_window_announcement_goes_to_the_service_targets_and_subscriptions_but_never_pagerduty():
    targets = [target(1, priority=0, type_=rule.PAGERDUTY, config={"routing_key": "R"}), target(2, priority=1)]
    for kind in ("window_started", "window_ended"):
        p = plan(kind=kind, targets=targets, team=TEAM, subscriptions=[webhook(9)])
        assert (ids(p), [s.webhook_id for s in p.subscriptions]) == ([2], [9])


def test_a_window_announcement_skips_a_target_outside_its_working_hours():
    import datetime as dt

    from services.routing.active_hours import parse

    office = NotificationTarget(target_id=3, service_id=SERVICE, type=rule.SLACK, config={"channel_id": "C3"},
                                priority=0, enabled=True, active_hours=parse(
                                    {"days": ["mon"], "from": "09:00", "to": "17:00", "timezone": "UTC"}))
    night = dt.datetime(2026, 1, 5, 22, 0, tzinfo=dt.timezone.utc)  # a Monday, 22:00
    p = plan(kind="window_started", targets=[office], at=night)
    assert (ids(p), [t.target_id for t in p.outside_hours]) == ([], [3])
