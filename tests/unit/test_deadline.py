import datetime as dt

import pytest

from medic.errors import InvalidArgument
from services.heartbeat import deadline as rule

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def clock(recent=(), threshold=1, activated=0, interval=60, grace=0, state="up"):
    return rule.Clock(threshold=threshold, activated_at=at(activated), interval_seconds=interval,
                      grace_seconds=grace, recent=tuple(recent), state=state)


def test_never_seen_service_is_due_one_interval_after_registration():
    assert rule.deadline((), 1, at(0), 60, 0) == at(60)


def test_threshold_one_deadline_is_one_interval_after_last_heartbeat():
    assert rule.deadline([at(30)], 1, at(0), 60, 0) == at(90)


def test_threshold_k_counts_from_the_kth_most_recent_heartbeat():
    recent = [at(50), at(40), at(10)]  # newest first
    assert rule.deadline(recent, 3, at(0), 60, 0) == at(70)
    assert rule.deadline(recent, 2, at(0), 60, 0) == at(100)


def test_fewer_heartbeats_than_threshold_count_from_activation():
    assert rule.deadline([at(50), at(40)], 3, at(5), 60, 0) == at(65)


def test_grace_period_extends_the_deadline():
    assert rule.deadline([at(30)], 1, at(0), 60, 15) == at(105)


def test_heartbeats_before_reactivation_do_not_count():
    assert rule.deadline([at(10)], 1, at(100), 60, 0) == at(160)


def test_service_is_overdue_exactly_at_its_deadline():
    assert not rule.is_overdue(at(60), at(59.999))
    assert rule.is_overdue(at(60), at(60))
    assert not rule.is_overdue(None, at(1000))


def test_push_beat_keeps_newest_first_and_at_most_threshold():
    assert rule.push_beat([at(2), at(1)], at(3), 2) == [at(3), at(2)]


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


@pytest.mark.parametrize("raw, stored", [("up", "UP"), (" Degraded ", "DEGRADED"), ("x" * 64, "X" * 64)])
def test_status_is_stored_upper_case(raw, stored):
    assert rule.normalize_status(raw) == stored


@pytest.mark.parametrize("raw", ["", "   ", "x" * 65, None, 5])
def test_bad_status_is_rejected(raw):
    with pytest.raises(InvalidArgument):
        rule.normalize_status(raw)
