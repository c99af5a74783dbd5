"""Names an alert is known by outside Medic.

An alert's external reference is the PagerDuty ``dedup_key`` its trigger,
reminders and resolve all carry, and the ``external_reference_id`` the legacy
``GET /alerts`` shows: one definition, so what is shown is what was sent. It
is per alert, not per service, so a resolve of an earlier alert that arrives
late cannot close the incident of a later one.
"""
from __future__ import annotations


def alert_reference(alert_id: int) -> str:
    return f"medic-alert-{alert_id}"
