"""Delivery processes sharing one database: a crash (kill -9) loses nothing, and
two processes deliver each notification exactly once."""
from __future__ import annotations

import collections
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.delivery.outbox import OutboxStore
from services.delivery.planning import plan_deliveries
from services.delivery.servicer import event_to_domain, targets_to_domain
from tests.support.receivers import PagerDutyReceiver, Reply, WebhookReceiver
from tests.support.delivery import (fast_settings, process_log, start_delivery_process, statuses,
    stop_process, wait_until_final)
from tests.support.events import alert_event, pagerduty_target, webhook_target

pytestmark = pytest.mark.timeout(120)


def enqueue_direct(db, event, targets, mode="all") -> list[int]:
    """Enqueues through the delivery store, as EnqueueNotifications does."""
    domain = event_to_domain(event)
    ids, _ = OutboxStore(db).enqueue(domain, mode, plan_deliveries(domain, mode, targets_to_domain(targets, [])))
    return ids


def wait_for_statuses(db, ids, wanted: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(r["status"] in wanted for r in statuses(db, ids).values()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not {wanted}: {statuses(db, ids)}")
        time.sleep(0.05)


def test_kill_9_with_deliveries_in_flight_and_in_retry_loses_none(db):
    settings = fast_settings(db.dsn, delivery_lease_seconds=3.0, delivery_http_timeout_seconds=2.5,
                             delivery_retry_delays=(2.0, 2.0), delivery_workers=16,
                             delivery_per_destination=8)
    with WebhookReceiver() as hook, PagerDutyReceiver() as pd:
        hook.always(Reply(200, delay=1.5))  # in flight when the process dies
        pd.always(Reply(500))               # in retry when the process dies
        settings = fast_settings(settings.database_url, **{
            **{k: getattr(settings, k) for k in ("delivery_lease_seconds",
                                                 "delivery_http_timeout_seconds",
                                                 "delivery_retry_delays", "delivery_workers",
                                                 "delivery_per_destination")},
            "pagerduty_events_url": pd.events_url})
        first = start_delivery_process(settings)
        second = None
        try:
            hook_ids = [enqueue_direct(db, alert_event(n), [webhook_target(hook.url)])[0]
                        for n in range(1, 9)]
            pd_ids = [enqueue_direct(db, alert_event(n), [pagerduty_target("rk")])[0]
                      for n in range(11, 19)]
            hook.wait_for(8, timeout=15)
            wait_for_statuses(db, pd_ids, {"retrying"}, timeout=10)
            first.send_signal(signal.SIGKILL)
            first.wait(5)
            before = statuses(db, hook_ids + pd_ids)
            assert all(before[i]["status"] == "pending" for i in hook_ids), before
            assert all(before[i]["status"] == "retrying" for i in pd_ids), before

            hook.always(Reply(200))
            pd.always(Reply(202))
            second = start_delivery_process(settings)
            rows = wait_until_final(db, hook_ids + pd_ids, timeout=20)
        finally:
            for proc in (first, second):
                if proc is not None:
                    log = process_log(proc)
                    stop_process(proc)
        assert all(r["status"] == "success" for r in rows.values()), (rows, log)
        # Every copy a receiver got (redeliveries included) carries the key of the
        # delivery it is a copy of: its alert's webhook-id / dedup_key, no other.
        key_of_alert = {r["alert_id"]: r["idempotency_key"] for r in db.all(
            "SELECT alert_id, idempotency_key FROM deliveries WHERE delivery_id = ANY(%s)",
            (hook_ids + pd_ids,))}
        assert len(set(key_of_alert.values())) == 16
        hook_copies = [(r.json()["alert"]["alert_id"], r.header("webhook-id")) for r in hook.requests]
        pd_copies = [(r.json()["payload"]["custom_details"]["alert_id"], r.json()["dedup_key"])
                     for r in pd.requests]
        assert [(alert, key) for alert, key in hook_copies + pd_copies
                if key != key_of_alert[alert]] == []
        assert {n: key_of_alert[n] for n in range(11, 19)} == {n: f"medic-alert-{n}" for n in range(11, 19)}
        # ... and every delivery was received: the webhooks twice at least (sent
        # by the killed process, then again after its lease).
        assert collections.Counter(alert for alert, _ in hook_copies).most_common()[-1][1] >= 2
        assert {alert for alert, _ in hook_copies} == set(range(1, 9))
        assert {alert for alert, _ in pd_copies} == set(range(11, 19))


def test_two_processes_deliver_1000_notifications_exactly_once(db):
    with WebhookReceiver() as hook:
        settings = fast_settings(db.dsn, delivery_workers=16, delivery_per_destination=16,
                                 delivery_lease_seconds=60.0)
        # At INFO each process logs every outcome it records.
        processes = [start_delivery_process(settings, "INFO"), start_delivery_process(settings, "INFO")]
        try:
            time.sleep(0.5)  # both claiming before the work arrives
            with ThreadPoolExecutor(4) as pool:
                ids = [i for batch in pool.map(
                    lambda n: enqueue_direct(db, alert_event(n), [webhook_target(hook.url)]),
                    range(1, 1001)) for i in batch]
            hook.wait_for(1000, timeout=60)
            rows = wait_until_final(db, ids, timeout=20)
            time.sleep(0.3)
            assert all(p.poll() is None for p in processes)
        finally:
            delivered_by = []
            for proc in processes:
                delivered_by.append(delivered_in_log(process_log(proc)))
                stop_process(proc)
    received = [r.header("webhook-id") for r in hook.requests]
    assert len(received) == 1000 and len(set(received)) == 1000
    odd = {i: r for i, r in rows.items() if r["status"] != "success" or r["attempts"] != 1}
    assert odd == {}
    # Both processes took part, and between them delivered each notification once.
    first, second = delivered_by
    assert len(first) > 0 and len(second) > 0, (len(first), len(second))
    assert not first & second and first | second == set(ids)


def delivered_in_log(log: str) -> set[int]:
    """Ids of the deliveries a process recorded as successful (its INFO log lines)."""
    import json
    import re
    pattern = re.compile(r"^delivery (\d+) \(webhook\) attempt \d+: success$")
    ids = set()
    for line in log.splitlines():
        try:
            message = json.loads(line).get("message", "")
        except ValueError:
            continue
        match = pattern.match(message)
        if match:
            ids.add(int(match.group(1)))
    return ids
