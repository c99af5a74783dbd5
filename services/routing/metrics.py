"""Metrics of the routing domain."""
from prometheus_client import Counter

ALERTS_UNROUTED = Counter(
    "medic_alerts_unrouted", "Alert events for which no target was found at any fallback level "
    "(service targets, team channel, default channel), by kind", ["kind"])
ALERT_EVENTS_ROUTED = Counter(
    "medic_alert_events_routed", "Alert events handed to delivery (or found unrouted), by kind "
    "and where the targets came from (service_targets, team_channel, default_channel, "
    "alert_route, unrouted)", ["kind", "source"])
