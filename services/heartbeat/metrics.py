"""Metrics of the heartbeat domain."""
from prometheus_client import Counter, Histogram

HEARTBEATS = Counter(
    "medic_heartbeats_total", "Heartbeats received, by outcome (accepted, unknown_service, "
    "inactive_service)", ["outcome"])
INGEST_BATCH_SIZE = Histogram(
    "medic_heartbeat_ingest_batch_size", "Heartbeats committed together in one transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
INGEST_COMMIT_SECONDS = Histogram(
    "medic_heartbeat_ingest_commit_seconds", "Time to record one batch of heartbeats",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
