"""Metrics of the delivery domain."""
import datetime

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "medic_deliveries_total", "Deliveries reaching a status (success, failed, skipped, retrying "
    "= one more attempt scheduled), by target type (slack, pagerduty, webhook)",
    ["type", "status"])
ATTEMPT_SECONDS = Histogram(
    "medic_delivery_attempt_seconds", "Duration of one delivery attempt (HTTP call), by target type",
    ["type"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ENQUEUED = Counter("medic_deliveries_enqueued_total", "Deliveries added to the outbox, by type",
                   ["type"])
QUEUE_DEPTH = Gauge("medic_delivery_queue_depth",
                    "Deliveries due now and not claimed (whole outbox, sampled by each process)")
OLDEST_DUE_SECONDS = Gauge("medic_delivery_oldest_due_seconds",
                           "How long the oldest due, unclaimed delivery has waited")
IN_FLIGHT = Gauge("medic_delivery_in_flight", "Deliveries being sent by this process")
EVENT_TO_DELIVERY_SECONDS = Histogram(
    "medic_alert_delivery_seconds", "Time from an alert event (opened: the monitor found the "
    "deadline passed or a failure was reported; reminder due; closed) to its successful delivery, "
    "by target type and event kind", ["type", "kind"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 900))


def observe_delivered(target_type: str, event: dict) -> None:
    """Counts a successful delivery's time since its event happened."""
    occurred = event.get("occurred_at")
    if not occurred:
        return
    at = datetime.datetime.fromisoformat(occurred.replace("Z", "+00:00"))
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - at).total_seconds()
    EVENT_TO_DELIVERY_SECONDS.labels(target_type, event.get("kind", "")).observe(max(elapsed, 0.0))
