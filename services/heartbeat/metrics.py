"""Metrics of the heartbeat domain."""
from prometheus_client import Counter, Gauge, Histogram

HEARTBEATS = Counter(
    "medic_heartbeats_total", "Heartbeats received, by outcome (accepted, unknown_service, "
    "inactive_service)", ["outcome"])
INGEST_BATCH_SIZE = Histogram(
    "medic_heartbeat_ingest_batch_size", "Heartbeats committed together in one transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
INGEST_COMMIT_SECONDS = Histogram(
    "medic_heartbeat_ingest_commit_seconds", "Time to record one batch of heartbeats",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))

# --- alert lifecycle and monitor ----------------------------------------------
ALERTS_OPENED = Counter("medic_alerts_opened_total", "Alerts opened, by reason", ["reason"])
ALERTS_RESOLVED = Counter("medic_alerts_resolved_total",
                          "Alerts closed, by reason (recovered, deactivated, manual)", ["reason"])
SERVICES_OVERDUE = Gauge("medic_services_overdue",
                         "Services found overdue by the last monitor batch (active, not yet down)")
SERVICES_DOWN = Gauge("medic_services_down", "Active services that are down")
SERVICES_BY_STATE = Gauge("medic_services", "Services by state (new: no heartbeat yet, up, down; "
                          "inactive: deactivated, whatever its state), counted every 5 s by the monitor",
                          ["state"])
MONITOR_TICK_SECONDS = Histogram(
    "medic_monitor_tick_seconds", "Time of one monitor pass",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
DUE_BATCH_SIZE = Histogram("medic_monitor_due_batch_size", "Overdue services claimed per batch",
                           buckets=(0, 1, 5, 10, 50, 100, 250, 500, 1000))
HANDOFFS = Counter("medic_alert_handoffs_total",
                   "Notifications handed to routing, by kind and outcome (accepted, retry)",
                   ["kind", "outcome"])
HANDOFF_BACKLOG = Gauge("medic_alert_handoff_backlog", "Notifications not yet accepted by routing")
HANDOFF_OLDEST_SECONDS = Gauge("medic_alert_handoff_oldest_seconds",
                               "Age of the oldest notification not yet accepted by routing")
REMEDIATION_HANDOFFS = Counter("medic_remediation_handoffs_total",
                               "Alert events handed to the remediation service, by kind and outcome "
                               "(accepted, retry)", ["kind", "outcome"])
REMEDIATION_HANDOFF_BACKLOG = Gauge("medic_remediation_handoff_backlog",
                                    "Alert events not yet accepted by the remediation service")

# --- retention -------------------------------------------------------------------
EVENTS_DELETED = Counter("medic_heartbeat_events_deleted_total", "Heartbeat events deleted by retention")
