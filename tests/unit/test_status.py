import pytest

from medic.errors import InvalidArgument
from services.heartbeat import status as rule


@pytest.mark.parametrize("raw, stored", [("up", "UP"), (" Degraded ", "DEGRADED"), ("x" * 64, "X" * 64)])
def test_status_is_stored_upper_case(raw, stored):
    assert rule.normalize_status(raw) == stored


@pytest.mark.parametrize("raw", ["", "   ", "x" * 65, None, 5])
def test_bad_status_is_rejected(raw):
    with pytest.raises(InvalidArgument):
        rule.normalize_status(raw)


def test_alert_output_is_the_first_kib_cut_at_a_character_boundary():
    from services.heartbeat.status import alert_output
    assert alert_output(None) is None and alert_output("") is None
    assert alert_output("x" * 2000) == "x" * 1024
    assert alert_output("a" + "€" * 400) == "a" + "€" * 341  # 1 + 341 * 3 = 1,024 bytes
