"""Fixtures of the end-to-end tests: ``medic up`` as a real process tree."""
from __future__ import annotations

import pytest

from tests.support.system import start_medic


@pytest.fixture
def medic_up(tmp_path, database_url):
    medic = start_medic(tmp_path, database_url)
    yield medic
    medic.stop()
