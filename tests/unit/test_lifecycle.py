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
