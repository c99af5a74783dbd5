import pytest

from medic.retry import RetrySchedule
from services.heartbeat.handoff import HANDOFF_RETRY


def test_a_finite_schedule_gives_up_after_its_last_delay():
    schedule = RetrySchedule((1, 5, 30))
    assert [schedule.delay(n) for n in range(1, 5)] == [1, 5, 30, None]


def test_the_handoff_retries_forever_doubling_from_half_a_second_up_to_five():
    assert [HANDOFF_RETRY.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 5, 5, 5]


def test_a_schedule_needs_a_delay():
    with pytest.raises(ValueError):
        RetrySchedule(())
