"""The remediation service's metrics, in one place."""
from prometheus_client import Counter, Gauge, Histogram

EXECUTIONS = Counter("medic_remediation_executions_total",
                     "Playbook executions that ended, by status", ["status"])
EXECUTIONS_STARTED = Counter("medic_remediation_executions_started_total",
                             "Playbook executions created, by trigger", ["trigger"])
STEPS = Counter("medic_remediation_steps_total", "Playbook steps that ended, by type and status",
                ["type", "status"])
STEP_SECONDS = Histogram("medic_remediation_step_duration_seconds", "Time a step ran (waits excluded)",
                         ["type"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))
PENDING_APPROVAL = Gauge("medic_remediation_pending_approvals", "Executions waiting for approval")
BREAKER_TRIPS = Counter("medic_remediation_circuit_breaker_trips_total",
                        "Circuit breaker trips (once per trip, not per refused execution)")
BREAKER_REFUSED = Counter("medic_remediation_circuit_breaker_refused_total",
                          "Executions refused by an open circuit breaker")
