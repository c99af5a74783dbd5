"""The remediation service: playbooks (automated fixes for known failures) and
their durable executions, started by alert events the heartbeat service hands
over, by hand (``ExecutePlaybook``) or by an outside system's webhook."""
