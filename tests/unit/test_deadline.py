import datetime as dt

from services.heartbeat import deadline as rule

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


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
