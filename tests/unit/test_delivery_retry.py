"""The retry schedule: when a failed delivery is attempted again."""
import email.utils

import pytest

from services.delivery.retry import decide, next_delay, parse_retry_after

DEFAULT = (1.0, 5.0, 30.0)


def test_default_schedule_attempts_at_0_1_5_30_then_gives_up():
    assert [next_delay(n, DEFAULT) for n in (1, 2, 3, 4)] == [1.0, 5.0, 30.0, None]


def test_retry_after_longer_than_the_schedule_is_honoured():
    assert next_delay(1, DEFAULT, retry_after=2.0) == 2.0


def test_retry_after_shorter_than_the_schedule_is_ignored():
    assert next_delay(2, DEFAULT, retry_after=2.0) == 5.0


def test_retry_after_is_capped_but_never_below_the_schedule():
    assert next_delay(1, DEFAULT, retry_after=3600, retry_after_cap=300) == 300
    assert next_delay(3, DEFAULT, retry_after=3600, retry_after_cap=10) == 30.0


def test_retry_after_does_not_extend_an_exhausted_schedule():
    assert next_delay(4, DEFAULT, retry_after=2.0) is None


def test_empty_schedule_means_a_single_attempt():
    assert next_delay(1, ()) is None


@pytest.mark.parametrize("outcome, attempts, expected", [
    ("success", 1, ("success", None)),
    ("permanent", 1, ("failed", None)),
    ("retryable", 1, ("retrying", 1.0)),
    ("retryable", 3, ("retrying", 30.0)),
    ("retryable", 4, ("failed", None)),
])
def test_decide_only_schedules_what_the_sender_classified(outcome, attempts, expected):
    assert decide(outcome, attempts, DEFAULT) == expected


def test_retry_after_header_as_seconds_or_http_date():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now_unix=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(1_000, usegmt=True), now_unix=2_000) == 0.0
