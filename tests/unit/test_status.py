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
