"""The delivery outbox (the ``deliveries`` table): enqueue, claim, record.

Due times come from the database clock, so
every delivery process agrees on them. A claim moves `next_attempt_at` to the
end of the lease and stamps a claim token: if the worker dies, the row simply
becomes due again; if it lives, only the holder of the token may record the
attempt (a worker whose lease was taken over cannot overwrite the new one).
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg2.extras import Json

from medic.db import Database, Row
from medic.errors import FailedPrecondition, NotFound
from services.delivery.model import PlannedDelivery
from services.delivery.subscriptions import SubscriptionStore

DELIVERY_COLUMNS = """
    delivery_id, event_id, position, kind, alert_id, service_id, target_type, target_id,
    webhook_id, mode, in_chain, config, destination_key, idempotency_key, status, attempts,
    round_attempts, next_attempt_at, last_attempt_at, last_response_code, last_response_body,
    last_error, last_latency_ms, created_at, updated_at
"""

INSERT_DELIVERIES = """
    INSERT INTO deliveries (event_id, position, kind, alert_id, service_id, target_type,
                            target_id, webhook_id, mode, in_chain, config, event,
                            destination_key, idempotency_key, next_attempt_at)
    VALUES %s
    ON CONFLICT (event_id, position) DO NOTHING
    RETURNING event_id
"""
INSERT_TEMPLATE = """(%(event_id)s, %(position)s, %(kind)s, %(alert_id)s, %(service_id)s,
    %(target_type)s, %(target_id)s, %(webhook_id)s, %(mode)s, %(in_chain)s, %(config)s,
    %(event)s, %(destination_key)s, %(idempotency_key)s,
    CASE WHEN %(due_now)s THEN now() END)"""

SELECT_EVENTS_DELIVERY_IDS = """
    SELECT event_id, delivery_id FROM deliveries WHERE event_id = ANY(%s) ORDER BY event_id, position
"""

# Candidates for a claim, oldest due first, read without locks (CLAIM locks the
# ones chosen). Per alert and destination, events go out in order: a RESOLVE waits
# while the TRIGGER to the same place is still pending or retrying (PagerDuty would
# otherwise open an incident after its resolve).
#
# Written for a steady plan whatever the statistics say. The candidates are taken
# in due order from the partial index with a LIMIT (the `window`), the ordering
# rule applied while they are taken, so rows waiting for an earlier event never
# fill the window and a burst of due rows is never sorted as a whole. The ordering
# rule is a correlated subquery, run per candidate through
# deliveries_unfinished_alert_idx until the window is full (as NOT EXISTS, stale
# statistics can turn it into a hash anti-join over every due row). Bitmap scans
# are off for the claim: they cannot mark the index entries of finished deliveries
# dead, so every claim would read all of them again; an ordered index scan marks
# them and then skips them.
CLAIM_PLANNER_SETTINGS = "SET LOCAL enable_bitmapscan = off"
SELECT_DUE = """
    SELECT c.delivery_id, c.destination_key, c.kind FROM deliveries c
    WHERE c.next_attempt_at <= now() AND c.status IN ('pending', 'retrying')
      AND c.destination_key <> ALL(%(full)s) AND c.delivery_id <> ALL(%(lost)s)
      AND (SELECT earlier.delivery_id FROM deliveries earlier
           WHERE earlier.alert_id = c.alert_id AND earlier.destination_key = c.destination_key
             AND earlier.delivery_id < c.delivery_id
             AND earlier.status IN ('pending', 'retrying')
           LIMIT 1) IS NULL
    ORDER BY c.next_attempt_at
    LIMIT %(window)s
"""

# A claim that lost chosen rows to another worker looks again, past them, up to
# CLAIM_ROUNDS times in all.
CLAIM_ROUNDS = 3

# Locks only the candidates chosen (a row lock is a heap write, WAL included:
# locking every candidate of the window, to keep a few, cost PostgreSQL more
# than the rest of a delivery); one another worker holds or has claimed since
# (no longer due) is skipped, and the next claim looks again.
CLAIM = """
    UPDATE deliveries
    SET attempts = attempts + 1, round_attempts = round_attempts + 1,
        claim_token = %(token)s, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => %(lease)s)
    WHERE delivery_id = ANY(ARRAY(
        SELECT delivery_id FROM deliveries
        WHERE delivery_id = ANY(%(ids)s) AND next_attempt_at <= now() AND status IN ('pending', 'retrying')
        FOR UPDATE SKIP LOCKED))
    RETURNING delivery_id, target_type, config, event, idempotency_key, destination_key,
              round_attempts, webhook_id, claim_token::text AS claim_token
"""

# A RESOLVE (or an acknowledgement) to a target that never heard of the alert is
# not sent: under
# NOTIFY_MODE_UNTIL_SUCCESS routing sends the RESOLVE to every target of the
# alert's route (a later target may hold the incident), but a target skipped for
# every earlier event (an earlier one succeeded) would get "resolved" for an
# incident it never saw. "The same target": the notification target, the
# subscription, or for a fallback channel (neither) the channel. The claim's
# ordering rule has let the RESOLVE through only once the earlier events to its
# destination are finished, so their statuses are final here. Only a RESOLVE never
# tried before is checked, and never one retried by hand (the operator asked for
# it, whatever skipped it before: this rule, or a chain that had succeeded); a
# last_error marks one this rule skipped already (a row retried by hand before the
# retried_by_hand column existed carries only that mark). Run on the chosen rows
# before they are claimed, so a skipped RESOLVE uses up no attempt. (A RESOLVE
# chained by an explicit NOTIFY_MODE_UNTIL_SUCCESS passes its turn to the next
# target, as a failure would.) A destination with no earlier delivery at all,
# while the alert had some elsewhere, never heard of it either (routing left it
# out: outside its working hours); an alert whose first delivery is its RESOLVE
# still sends it.
SKIPPED_RESOLVE_REASON = ("not sent: this target got none of the alert's earlier events "
                          "(each was skipped or not sent to it), so it is not told the alert resolved "
                          "or was acknowledged")
SKIP_UNHEARD_RESOLVES = """
    UPDATE deliveries c
    SET status = 'skipped', next_attempt_at = NULL, updated_at = now(), last_error = %(reason)s
    WHERE c.delivery_id = ANY(ARRAY(
        SELECT delivery_id FROM deliveries
        WHERE delivery_id = ANY(%(ids)s) AND next_attempt_at <= now() AND status IN ('pending', 'retrying')
        FOR UPDATE SKIP LOCKED))
      AND c.kind IN ('resolve', 'acknowledge') AND c.attempts = 0 AND NOT c.retried_by_hand
      AND c.last_error IS NULL
      AND EXISTS (SELECT 1 FROM deliveries any_earlier
                  WHERE any_earlier.alert_id = c.alert_id AND any_earlier.delivery_id < c.delivery_id)
      AND coalesce((SELECT bool_and(earlier.status = 'skipped') FROM deliveries earlier
           WHERE earlier.alert_id = c.alert_id AND earlier.delivery_id < c.delivery_id
             AND earlier.target_type = c.target_type AND earlier.destination_key = c.destination_key
             AND earlier.target_id IS NOT DISTINCT FROM c.target_id
             AND earlier.webhook_id IS NOT DISTINCT FROM c.webhook_id), true)
    RETURNING c.delivery_id, c.target_type, c.event_id, c.position, c.in_chain
"""

# The outcomes of many attempts in one statement; a row whose claim token no
# longer matches (taken over after its lease) is left alone and not returned.
# last_attempt_at is when the attempt began (now less its latency, on the
# database's clock as every other time here; late by the recorder's wait, a few
# ms), written with the other last_* columns, so all of them describe the same
# attempt: one never recorded (a crash mid-send, or one cut short at shutdown)
# counts in `attempts` only.
RECORD_ATTEMPTS = """
    UPDATE deliveries d
    SET status = v.status, claim_token = NULL, updated_at = now(),
        last_attempt_at = now() - make_interval(secs => COALESCE(v.latency_ms, 0) / 1000.0),
        next_attempt_at = CASE WHEN v.delay IS NULL THEN NULL
                               ELSE now() + make_interval(secs => v.delay) END,
        last_response_code = v.response_code, last_response_body = v.response_body,
        last_error = v.error, last_latency_ms = v.latency_ms
    FROM (VALUES %s) AS v (delivery_id, token, status, delay, response_code, response_body,
                           error, latency_ms)
    WHERE d.delivery_id = v.delivery_id AND d.claim_token = v.token
    RETURNING d.delivery_id, d.event_id, d.position, d.in_chain, d.status, d.target_type
"""
RECORD_TEMPLATE = ("(%(delivery_id)s::bigint, %(token)s::uuid, %(status)s::text, %(delay)s::float8,"
                   " %(response_code)s::int, %(response_body)s::text, %(error)s::text,"
                   " %(latency_ms)s::int)")

# NOTIFY_MODE_UNTIL_SUCCESS: after a success the waiting targets are skipped ...
SKIP_REST_OF_CHAIN = """
    UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL, updated_at = now()
    WHERE event_id = %(event_id)s AND in_chain AND position > %(position)s
      AND status = 'pending' AND next_attempt_at IS NULL
    RETURNING target_type
"""
# ... and after a failure for good the next one becomes due.
START_NEXT_IN_CHAIN = """
    UPDATE deliveries SET next_attempt_at = now(), updated_at = now()
    WHERE delivery_id = (
        SELECT delivery_id FROM deliveries
        WHERE event_id = %(event_id)s AND in_chain AND position > %(position)s
          AND status = 'pending' AND next_attempt_at IS NULL
        ORDER BY position LIMIT 1)
"""

# A claim counts an attempt (a crash mid-send must count: the receiver may have
# got it); a release gives it back when the send had not begun (`uncounted` 1).
RELEASE_CLAIMS = """
    UPDATE deliveries
    SET next_attempt_at = now(), claim_token = NULL, updated_at = now(),
        attempts = attempts - %(uncounted)s, round_attempts = round_attempts - %(uncounted)s
    WHERE delivery_id = ANY(%(ids)s) AND claim_token = ANY(%(tokens)s::uuid[])
"""

RETRY_BY_HAND = f"""
    UPDATE deliveries
    SET status = 'pending', round_attempts = 0, next_attempt_at = now(), claim_token = NULL,
        retried_by_hand = true, updated_at = now()
    WHERE delivery_id = %s AND status IN ('failed', 'skipped')
    RETURNING {DELIVERY_COLUMNS}
"""
SELECT_DELIVERY = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = %s"

LIST_DELIVERIES = f"""
    SELECT {DELIVERY_COLUMNS} FROM deliveries
    WHERE (%(alert_id)s = 0 OR alert_id = %(alert_id)s)
      AND (%(service_id)s = 0 OR service_id = %(service_id)s)
      AND (%(target_id)s = 0 OR target_id = %(target_id)s)
      AND (%(webhook_id)s = 0 OR webhook_id = %(webhook_id)s)
      AND (%(status)s = '' OR status = %(status)s)
      AND (%(target_type)s = '' OR target_type = %(target_type)s)
      AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s::timestamptz)
    ORDER BY delivery_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
"""

QUEUE_STATS = """
    SELECT count(*) AS due,
           COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)), 0)::float8 AS oldest_seconds
    FROM deliveries
    WHERE next_attempt_at <= now() AND status IN ('pending', 'retrying')
"""

@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt, to record under the claim token it was made with."""
    delivery_id: int
    token: str
    status: str
    delay: float | None
    response_code: int
    response_body: str
    error: str
    latency_ms: int


@dataclass(frozen=True)
class RecordedAttempt:
    """What recording an attempt changed (None when the claim had been taken over)."""
    status: str
    target_type: str
    skipped_types: list[str]


def _choose(candidates: Sequence[Row], want: int, room: Callable[[str], int],
            taken: dict[str, int]) -> list[tuple[int, str]]:
    """Up to ``want`` candidates, in order, within each destination's room
    (``taken`` counts what this claim already holds, and is updated)."""
    chosen = []
    for row in candidates:
        if len(chosen) >= want:
            break
        key = row["destination_key"]
        if taken.get(key, 0) < room(key):
            taken[key] = taken.get(key, 0) + 1
            chosen.append((row["delivery_id"], key))
    return chosen


class OutboxStore:
    def __init__(self, db: Database, subscriptions: SubscriptionStore | None = None):
        self.db = db
        self.subscriptions = subscriptions or SubscriptionStore(db)

    def enqueue(self, event: dict[str, Any], mode: str,
                planned: Sequence[PlannedDelivery]) -> tuple[list[int], bool]:
        """Inserts the event's deliveries once; returns (ids in plan order, created)."""
        return self.enqueue_many([(event, mode, planned)])[0]

    def enqueue_many(self, plans: Sequence[tuple[dict[str, Any], str, Sequence[PlannedDelivery]]]
                     ) -> list[tuple[list[int], bool]]:
        """Inserts the deliveries of several events in one transaction, each event's
        once; returns (ids in plan order, created) per event, in order."""
        rows = [{"event_id": event["event_id"], "position": p.position, "kind": event["kind"],
                 "alert_id": event["alert_id"], "service_id": event["service"]["service_id"],
                 "target_type": p.target_type, "target_id": p.target_id,
                 "webhook_id": p.webhook_id, "mode": mode, "in_chain": p.in_chain,
                 "config": Json(p.config), "event": Json(event),
                 "destination_key": p.destination_key, "idempotency_key": p.idempotency_key,
                 "due_now": p.due_now} for event, mode, planned in plans for p in planned]
        # One order for every writer: two batches holding the same events never
        # wait for each other in opposite orders (a deadlock).
        rows.sort(key=lambda r: (r["event_id"], r["position"]))
        event_ids = sorted({event["event_id"] for event, _, _ in plans})
        with self.db.transaction() as tx:
            created = {r["event_id"] for r in tx.values(
                INSERT_DELIVERIES, rows, template=INSERT_TEMPLATE, fetch=True)} \
                if rows else set()
            ids: dict[str, list[int]] = {}
            for r in tx.all(SELECT_EVENTS_DELIVERY_IDS, (event_ids,)):
                ids.setdefault(r["event_id"], []).append(r["delivery_id"])
        return [(ids.get(event["event_id"], []), event["event_id"] in created) for event, _, _ in plans]

    def claim_due(self, limit: int, lease_seconds: float, room: Callable[[str], int],
                  full: Sequence[str] = (),
                  on_skipped: Callable[[Row], None] = lambda row: None) -> list[Row]:
        """Claims up to `limit` due deliveries, at most `room(destination)` per
        destination and none for the `full` ones, so a slow receiver's backlog
        neither takes every worker nor hides the deliveries queued behind it.
        Rows come with their webhook subscription, if any. A RESOLVE due to a
        target that got none of the alert's earlier events is marked skipped
        instead (see SKIP_UNHEARD_RESOLVES); `on_skipped` is told of each
        ({delivery_id, target_type}) once that is committed."""
        if limit < 1:
            return []
        skipped: list[Row] = []
        with self.db.transaction() as tx:
            tx.execute(CLAIM_PLANNER_SETTINGS)
            token = str(uuid.uuid4())
            claimed: list[Row] = []
            taken: dict[str, int] = {}  # destination -> rows claimed by this call
            lost: list[int] = []  # chosen, but another worker claimed (or this claim skipped) them
            for _ in range(CLAIM_ROUNDS):
                want = limit - len(claimed)
                candidates = tx.all(SELECT_DUE, {"window": want * 8, "full": list(full), "lost": lost})
                chosen = _choose(candidates, want, room, taken)
                if not chosen:
                    break
                resolves = {r["delivery_id"] for r in candidates if r["kind"] in ("resolve", "acknowledge")}
                to_claim = [i for i, _ in chosen]
                if resolves.intersection(to_claim):
                    now_skipped = tx.all(SKIP_UNHEARD_RESOLVES, {
                        "ids": [i for i in to_claim if i in resolves], "reason": SKIPPED_RESOLVE_REASON})
                    skipped += now_skipped
                    for row in now_skipped:
                        if row["in_chain"]:
                            tx.execute(START_NEXT_IN_CHAIN, row)
                    skipped_ids = {r["delivery_id"] for r in now_skipped}
                    to_claim = [i for i in to_claim if i not in skipped_ids]
                got = tx.all(CLAIM, {"token": token, "lease": lease_seconds, "ids": to_claim}) \
                    if to_claim else []
                claimed += got
                if len(got) == len(chosen):
                    break
                got_ids = {row["delivery_id"] for row in got}
                for delivery_id, key in chosen:
                    if delivery_id not in got_ids:
                        taken[key] -= 1
                        lost.append(delivery_id)
            webhooks = self.subscriptions.current(
                tx, [r["webhook_id"] for r in claimed if r["webhook_id"] is not None])
        for row in skipped:
            on_skipped(row)
        for row in claimed:
            row["webhook"] = webhooks.get(row["webhook_id"])
        return claimed

    def record_attempts(self, attempts: Sequence[Attempt]) -> dict[int, RecordedAttempt]:
        """Records many attempts in one transaction (and, for deliveries chained under
        NOTIFY_MODE_UNTIL_SUCCESS, skips the rest of the chain after a success or
        makes the next target due after a failure for good). Returns what was
        recorded by delivery id; an attempt whose claim was taken over is absent."""
        if not attempts:
            return {}
        rows = [{"delivery_id": a.delivery_id, "token": a.token, "status": a.status, "delay": a.delay,
                 "response_code": a.response_code or None, "response_body": a.response_body,
                 "error": a.error or None, "latency_ms": a.latency_ms} for a in attempts]
        recorded: dict[int, RecordedAttempt] = {}
        with self.db.transaction() as tx:
            for row in tx.values(RECORD_ATTEMPTS, rows, template=RECORD_TEMPLATE, fetch=True):
                skipped: list[str] = []
                if row["in_chain"] and row["status"] == "success":
                    skipped = [r["target_type"] for r in tx.all(SKIP_REST_OF_CHAIN, row)]
                elif row["in_chain"] and row["status"] == "failed":
                    tx.execute(START_NEXT_IN_CHAIN, row)
                recorded[row["delivery_id"]] = RecordedAttempt(
                    status=row["status"], target_type=row["target_type"], skipped_types=skipped)
        return recorded

    def release(self, claims: Sequence[tuple[int, str]], *, sending_began: bool = False) -> int:
        """Makes claimed deliveries, (id, claim token), due again at once (graceful
        shutdown). Unless their sending had begun, their claims' attempts are given
        back: nothing went out, so no retry is used up."""
        if not claims:
            return 0
        return self.db.execute(RELEASE_CLAIMS, {"ids": [c[0] for c in claims],
                                                "tokens": [c[1] for c in claims],
                                                "uncounted": 0 if sending_began else 1})

    def retry_by_hand(self, delivery_id: int) -> Row:
        with self.db.transaction() as tx:
            row = tx.one(RETRY_BY_HAND, (delivery_id,))
            if row is not None:
                return row
            existing = tx.one(SELECT_DELIVERY, (delivery_id,))
        if existing is None:
            raise NotFound(f"delivery {delivery_id} not found")
        raise FailedPrecondition(
            f"delivery {delivery_id} is {existing['status']}; only failed or skipped ones can be retried")

    def list_deliveries(self, *, alert_id: int = 0, service_id: int = 0, target_id: int = 0,
                        webhook_id: int = 0, status: str = "", target_type: str = "",
                        created_after: dt.datetime | None = None, limit: int = 100,
                        offset: int = 0) -> list[Row]:
        return self.db.all(LIST_DELIVERIES, {
            "alert_id": alert_id, "service_id": service_id, "target_id": target_id,
            "webhook_id": webhook_id, "status": status, "target_type": target_type,
            "created_after": created_after, "limit": limit, "offset": offset})

    def queue_stats(self) -> Row:
        return self.db.one(QUEUE_STATS)
