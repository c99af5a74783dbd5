"""Metrics of the delivery domain."""
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
