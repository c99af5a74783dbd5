import datetime as dt

from services.heartbeat import lifecycle as rule

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def clock(recent=(), threshold=1, activated=0, interval=60, grace=0, state="up"):
    return rule.Clock(threshold=threshold, activated_at=at(activated), interval_seconds=interval,
                      grace_seconds=grace, recent=tuple(recent), state=state)


def test_reported_failures_do_not_count_as_life():
    after = rule.apply_heartbeats(clock(recent=[at(10)]), ["FAILED", "DOWN"], at(20))
    assert after.recent == [at(10)]
    assert after.deadline_at == at(70)


def test_unknown_words_count_as_life():
    after = rule.apply_heartbeats(clock(state="new"), ["SYNCING"], at(20))
    assert after.recent == [at(20)]
    assert after.state == "up"


def test_heartbeat_brings_down_service_back_up_when_the_rule_holds():
    after = rule.apply_heartbeats(clock(recent=[at(0)], state="down"), ["UP"], at(200))
    assert after.state == "up"
    assert after.deadline_at == at(260)


def test_down_service_stays_down_until_threshold_is_met_again():
    down = clock(recent=[at(0), at(1)], threshold=3, activated=0, state="down")
    after = rule.apply_heartbeats(down, ["UP"], at(200))
    assert after.state == "down"
    after = rule.apply_heartbeats(clock(recent=after.recent, threshold=3, state="down"), ["UP", "UP"], at(201))
    assert after.state == "up"


def test_states_and_reasons_are_the_strings_the_contracts_name():
    from medic import enums
    assert {s.value for s in rule.ServiceState} == set(enums.SERVICE_STATE.numbers)
    assert {r.value for r in rule.AlertReason} == set(enums.ALERT_REASON.numbers)
    from medic.quiet import ANNOUNCEMENTS
    # An alert's notifications, and the announcements of maintenance windows (no alert).
    assert {k.value for k in rule.NotificationKind} | ANNOUNCEMENTS == set(enums.ALERT_EVENT_KIND.numbers)


def test_first_sign_of_life_that_makes_the_rule_hold_takes_a_new_service_up():
    after = rule.apply_heartbeats(clock(state="new"), ["UP", "UP"], at(20))
    assert after.events == (rule.Transition("new", "up", rule.ChangeReason.FIRST_HEARTBEAT),)


def test_failure_then_recovery_in_one_batch_opens_and_closes_the_alert():
    after = rule.apply_heartbeats(clock(recent=[at(10)], state="up"), ["FAILED", "UP"], at(20))
    assert [t.alert for t in after.events] == [rule.AlertChange.OPEN, rule.AlertChange.CLOSE]
    assert after.state == "up"


def test_deactivating_closes_the_alert_and_leaves_the_service_new():
    after = rule.apply_update("down", active=True, muted=False, to_active=False, to_muted=False, down=None)
    assert after.state == "new"
    assert [(t.reason, t.alert) for t in after.events] == [
        (rule.ResolveReason.DEACTIVATED, rule.AlertChange.CLOSE)]
    assert not after.restarts_clock


def test_reactivating_restarts_the_clock():
    after = rule.apply_update("new", active=False, muted=False, to_active=True, to_muted=False, down=None)
    assert after.restarts_clock
    assert [t.reason for t in after.events] == [rule.ChangeReason.ACTIVATED]


def test_marking_an_inactive_service_down_opens_nothing():
    after = rule.apply_update("new", active=False, muted=False, to_active=False, to_muted=False, down=True)
    assert after.events == ()


def test_muting_is_recorded_without_a_state_change():
    after = rule.apply_update("down", active=True, muted=False, to_active=True, to_muted=True, down=None)
    assert after.events == (rule.Transition("down", "down", rule.ChangeReason.MUTED),)
    assert after.events[0].alert is None


def test_muted_service_gets_no_trigger_or_reminder_but_its_resolve_still_goes_out():
    muted = rule.Quiet(muted=True)
    assert rule.decide_notification(rule.NotificationKind.TRIGGER, muted) == (False, rule.SkipReason.MUTED)
    assert rule.decide_notification(rule.NotificationKind.REMINDER, muted).skip_reason == rule.SkipReason.MUTED
    assert rule.decide_notification(rule.NotificationKind.RESOLVE, muted._replace(alert_notified=True)).send
    assert rule.decide_notification(rule.NotificationKind.RESOLVE, rule.Quiet()) == (
        False, rule.SkipReason.NEVER_NOTIFIED)


def test_reminders_come_every_interval_but_not_closer_than_the_minimum():
    policy = rule.LifecyclePolicy(reminder_min_seconds=60)
    reminder = rule.remind(2, quiet=rule.Quiet(), interval_seconds=30, now=at(0), policy=policy)
    assert (reminder.notify.send, reminder.reminders, reminder.next_at) == (True, 3, at(60))
    skipped = rule.remind(2, quiet=rule.Quiet(muted=True), interval_seconds=300, now=at(0), policy=policy)
    assert (skipped.notify.send, skipped.reminders, skipped.next_at) == (False, 2, at(300))


def test_failures_within_the_tolerance_open_nothing_and_the_next_one_does():
    tolerant = clock(recent=[at(10)])._replace(failure_tolerance=2)
    after = rule.apply_heartbeats(tolerant, ["FAILED", "FAILED"], at(20))
    assert (after.state, after.events, after.failures) == ("up", (), 2)
    after = rule.apply_heartbeats(tolerant._replace(failures=2), ["FAILED"], at(21))
    assert after.events == (rule.Transition("up", "down", rule.AlertReason.REPORTED_FAILURE, 0),)


def test_a_success_resets_the_failure_count_and_a_start_does_not():
    tolerant = clock(recent=[at(10)])._replace(failure_tolerance=2, failures=2)
    assert rule.apply_heartbeats(tolerant, ["STARTED"], at(20)).failures == 2
    assert rule.apply_heartbeats(tolerant, ["COMPLETED"], at(20)).failures == 0


def test_a_start_moves_the_clock_but_resolves_nothing():
    after = rule.apply_heartbeats(clock(recent=[at(0)], state="down")._replace(open_alert="reported_failure"),
                                  ["STARTED"], at(30))
    assert (after.state, after.events, after.recent) == ("down", (), [at(30)])


def test_the_end_of_an_overrun_closes_run_too_long_before_its_own_outcome():
    hung = clock(recent=[at(0)], state="down")._replace(open_alert="run_too_long")
    ended = rule.apply_heartbeats(hung, ["FAILED"], at(30), [rule.RunEnd.OVERRAN])
    assert [t.reason for t in ended.events] == [rule.ResolveReason.RUN_ENDED, rule.AlertReason.REPORTED_FAILURE]
    # An alert of another reason stays open until a success.
    failing = clock(recent=[at(0)], state="down")._replace(open_alert="reported_failure")
    assert rule.apply_heartbeats(failing, ["STARTED"], at(30), [rule.RunEnd.OVERRAN]).events == ()


def test_a_run_that_completes_too_fast_opens_run_too_fast_after_its_success():
    after = rule.apply_heartbeats(clock(recent=[at(0)], state="down")._replace(open_alert="reported_failure"),
                                  ["COMPLETED"], at(30), [rule.RunEnd.TOO_FAST])
    assert [t.reason for t in after.events] == [rule.ResolveReason.RECOVERED, rule.AlertReason.RUN_TOO_FAST]
    assert after.state == "down"


def test_a_reminder_due_in_a_window_is_due_again_when_the_window_ends():
    policy = rule.LifecyclePolicy(reminder_min_seconds=60)
    held = rule.remind(1, quiet=rule.Quiet(window=7), window_end=at(900), interval_seconds=60, now=at(0),
                       policy=policy)
    assert (held.notify, held.reminders, held.next_at) == ((False, rule.SkipReason.WINDOW), 1, at(900))


def test_the_trigger_a_window_held_back_is_what_goes_out_when_it_ends():
    policy = rule.LifecyclePolicy()
    due = rule.remind(0, quiet=rule.Quiet(), trigger_sent=False, interval_seconds=60, now=at(0), policy=policy)
    assert (due.kind, due.notify.send, due.reminders) == (rule.NotificationKind.TRIGGER, True, 0)


def test_an_acknowledged_alert_gets_no_reminders_but_its_resolve_and_acknowledgement_go_out():
    acked = rule.Quiet(acknowledged=True, alert_notified=True)
    policy = rule.LifecyclePolicy()
    skipped = rule.remind(3, quiet=acked, interval_seconds=60, now=at(0), policy=policy)
    assert (skipped.notify, skipped.next_at) == ((False, rule.SkipReason.ACKNOWLEDGED), at(60))
    assert rule.decide_notification(rule.NotificationKind.RESOLVE, acked).send
    assert rule.decide_notification(rule.NotificationKind.ACKNOWLEDGE, acked).send
    assert rule.decide_notification(rule.NotificationKind.ACKNOWLEDGE, rule.Quiet(acknowledged=True)) == (
        False, rule.SkipReason.NEVER_NOTIFIED)


def test_each_skip_has_one_reason_the_window_first():
    everything = rule.Quiet(window=3, muted=True, acknowledged=True, outside_active_hours=True)
    order = []
    while True:
        notify = rule.decide_notification(rule.NotificationKind.REMINDER, everything)
        if notify.send:
            break
        order.append(notify.skip_reason)
        everything = everything._replace(**{{"window": "window", "muted": "muted", "acknowledged": "acknowledged",
                                             "outside_active_hours": "outside_active_hours"}[notify.skip_reason]:
                                            0 if notify.skip_reason == "window" else False})
    assert order == ["window", "muted", "acknowledged", "outside_active_hours"]
