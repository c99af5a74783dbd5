"""The /v2 management routes (docs/api.md), one RPC each."""
from gateway.v2 import RpcRoute

AUTH = "medic.v1.AuthService/"
DELIVERY = "medic.v1.DeliveryService/"
HEARTBEAT = "medic.v1.HeartbeatService/"
ROUTING = "medic.v1.RoutingService/"
REMEDIATION = "medic.v1.RemediationService/"

TABLE: list[RpcRoute] = [
    # API keys
    RpcRoute("POST", "/v2/api-keys", AUTH + "CreateApiKey",
             "Create an API key; the plaintext key is in results.key, shown this once",
             body=True, status=201, message="API key created. Store the key now: it is not shown again."),
    RpcRoute("GET", "/v2/api-keys", AUTH + "ListApiKeys", "List API keys (never the keys or their hashes)",
             result="api_keys"),
    RpcRoute("DELETE", "/v2/api-keys/{key_id}", AUTH + "RevokeApiKey", "Revoke an API key",
             result="api_key", message="API key revoked."),
    RpcRoute("PUT", "/v2/api-keys/{key_id}/rate-limits", AUTH + "SetRateLimits",
             "Set a key's rate-limit overrides (0 removes one)", body=True, body_field="rate_limits",
             result="api_key", message="Rate limits updated."),
    # services (the legacy /service endpoints cover the rest)
    RpcRoute("DELETE", "/v2/services/{service_id:int}", HEARTBEAT + "DeleteService",
             "Delete a service with its heartbeats, alerts and notification targets",
             message="Service deleted."),
    RpcRoute("GET", "/v2/services/{service_id:int}/transitions", HEARTBEAT + "ListServiceTransitions",
             "A service's state changes, newest first, a page at a time", query=("limit", "offset"),
             result="transitions"),
    RpcRoute("POST", "/v2/services/bulk", HEARTBEAT + "BulkUpdateServices",
             "Change up to 5,000 services at once (service_ids and the settings to set); each one is "
             "snapshotted and audited under one bulk_id, which POST /v2/bulk-changes/{bulk_id}/undo takes",
             body=True, message="Services updated."),
    RpcRoute("POST", "/v2/bulk-changes/{bulk_id}/undo", HEARTBEAT + "UndoBulkChange",
             "Put back every service of a bulk change (itself a bulk change, with a new bulk_id)",
             message="Bulk change undone."),
    RpcRoute("GET", "/v2/services/{service_id:int}/runs", HEARTBEAT + "ListJobRuns",
             "A service's job runs, newest first, a page at a time", query=("limit", "offset"), result="runs"),
    RpcRoute("GET", "/v2/services/{service_id:int}/stats", HEARTBEAT + "GetJobStats",
             "Duration statistics of a service's last 100 completed runs (null below 5 runs) and the "
             "success rate of its last 100 ended runs"),
    RpcRoute("POST", "/v2/services/{service_id:int}/mute", HEARTBEAT + "MuteService",
             "Mute a service, with an optional reason and `until` (without it the mute ends when the service "
             "recovers; MEDIC_MUTE_TTL_SECONDS after it began at the latest)", body=True, result="service",
             message="Service muted."),
    RpcRoute("DELETE", "/v2/services/{service_id:int}/mute", HEARTBEAT + "UnmuteService", "Lift a service's mute",
             result="service", message="Service unmuted."),
    # alerts
    RpcRoute("POST", "/v2/alerts/{alert_id:int}/ack", HEARTBEAT + "AcknowledgeAlert",
             "Acknowledge an open alert: no more reminders until it resolves (the resolve is still sent); "
             "PagerDuty targets that got the trigger get an acknowledge event", result="alert",
             message="Alert acknowledged."),
    RpcRoute("GET", "/v2/alerts/{alert_id:int}/skips", HEARTBEAT + "ListNotificationSkips",
             "The alert's notifications that were not sent, each with its reason (window, muted, acknowledged, "
             "never_notified)", query=("limit",), result="skips"),
    RpcRoute("GET", "/v2/alerts/{alert_id:int}/target-skips", ROUTING + "ListTargetSkips",
             "The targets the alert's notifications were not sent to, each with its reason "
             "(outside_active_hours)", query=("limit",), result="skips"),
    # maintenance windows
    RpcRoute("POST", "/v2/maintenance-windows", HEARTBEAT + "CreateMaintenanceWindow",
             "Create a maintenance window: one-off (starts_at, ends_at) or recurring (cron, duration_seconds, "
             "timezone), for a service, a team, every service or a name glob", body=True, body_field="window",
             status=201, result="window", message="Maintenance window created."),
    RpcRoute("GET", "/v2/maintenance-windows", HEARTBEAT + "ListMaintenanceWindows",
             "List maintenance windows (active_only=true: those open now)", query=("active_only",),
             result="windows"),
    RpcRoute("GET", "/v2/maintenance-windows/{window_id:int}", HEARTBEAT + "GetMaintenanceWindow",
             "Get a maintenance window, with whether it is open now", result="window"),
    RpcRoute("PUT", "/v2/maintenance-windows/{window_id:int}", HEARTBEAT + "UpdateMaintenanceWindow",
             "Replace a maintenance window's definition", body=True, body_field="window", result="window",
             message="Maintenance window updated."),
    RpcRoute("DELETE", "/v2/maintenance-windows/{window_id:int}", HEARTBEAT + "DeleteMaintenanceWindow",
             "Delete a maintenance window (alerts it held back are notified now if still open)",
             message="Maintenance window deleted."),
    # teams
    RpcRoute("POST", "/v2/teams", ROUTING + "CreateTeam", "Create a team", body=True, status=201,
             result="team", message="Team created."),
    RpcRoute("GET", "/v2/teams", ROUTING + "ListTeams", "List teams", result="teams"),
    RpcRoute("GET", "/v2/teams/{team_id:int}", ROUTING + "GetTeam", "Get a team", result="team"),
    RpcRoute("PATCH", "/v2/teams/{team_id:int}", ROUTING + "UpdateTeam",
             "Change a team's name or Slack channel (\"\" removes the channel)", body=True, result="team",
             message="Team updated."),
    RpcRoute("DELETE", "/v2/teams/{team_id:int}", ROUTING + "DeleteTeam",
             "Delete a team (its services stay, without a team)", message="Team deleted."),
    # notification targets
    RpcRoute("POST", "/v2/notification-targets", ROUTING + "CreateNotificationTarget",
             "Add a notification target to a service", body=True, status=201, result="target",
             message="Notification target created."),
    RpcRoute("GET", "/v2/notification-targets", ROUTING + "ListNotificationTargets",
             "List notification targets", query=("service_id",), result="targets"),
    RpcRoute("PATCH", "/v2/notification-targets/{target_id:int}", ROUTING + "UpdateNotificationTarget",
             "Change a notification target", body=True, result="target",
             message="Notification target updated."),
    RpcRoute("DELETE", "/v2/notification-targets/{target_id:int}", ROUTING + "DeleteNotificationTarget",
             "Delete a notification target", message="Notification target deleted."),
    # webhook subscriptions
    RpcRoute("POST", "/v2/webhooks", DELIVERY + "CreateWebhook",
             "Subscribe a webhook to one service's alerts (service_id) or to all (no service_id); "
             "the signing secret is generated when absent and returned this once", body=True, status=201,
             message="Webhook created. Store the secret now: it is not shown again."),
    RpcRoute("GET", "/v2/webhooks", DELIVERY + "ListWebhooks", "List webhook subscriptions (never secrets)",
             query=("service_id",), result="webhooks"),
    RpcRoute("PATCH", "/v2/webhooks/{webhook_id:int}", DELIVERY + "UpdateWebhook",
             "Change a webhook subscription (service_id 0 makes it global; headers are replaced whole; "
             "an empty secret removes it, so deliveries go out unsigned)",
             body=True, result="webhook", message="Webhook updated."),
    RpcRoute("DELETE", "/v2/webhooks/{webhook_id:int}", DELIVERY + "DeleteWebhook",
             "Delete a webhook subscription", message="Webhook deleted."),
    # deliveries
    RpcRoute("GET", "/v2/deliveries", DELIVERY + "ListDeliveries",
             "The delivery log, newest first, a page at a time", query=("alert_id", "service_id", "target_id", "webhook_id", "status",
                                         "limit", "offset"), result="deliveries"),
    RpcRoute("POST", "/v2/deliveries/{delivery_id:int}/retry", DELIVERY + "RetryDelivery",
             "Try a failed or skipped delivery again", result="delivery", message="Delivery queued again."),
    # playbooks (remediation)
    RpcRoute("POST", "/v2/playbooks", REMEDIATION + "CreatePlaybook",
             "Create a playbook from its YAML document ({\"yaml\": ...}); errors name the line and field",
             body=True, status=201, message="Playbook created."),
    RpcRoute("GET", "/v2/playbooks", REMEDIATION + "ListPlaybooks", "List playbooks", result="playbooks"),
    RpcRoute("POST", "/v2/playbooks/apply", REMEDIATION + "ApplyPlaybook",
             "Create the playbook, or replace the document of the playbook of the same name "
             "(what `medic playbooks apply` calls)", body=True, message="Playbook applied."),
    RpcRoute("POST", "/v2/playbooks/validate", REMEDIATION + "ValidatePlaybook",
             "Check a playbook document without saving it (results.valid, results.errors)", body=True),
    RpcRoute("GET", "/v2/playbooks/{playbook_id:int}", REMEDIATION + "GetPlaybook", "Get a playbook with its YAML",
             result="playbook"),
    RpcRoute("PUT", "/v2/playbooks/{playbook_id:int}", REMEDIATION + "UpdatePlaybook",
             "Replace a playbook's document ({\"yaml\": ...})", body=True, result="playbook",
             message="Playbook updated."),
    RpcRoute("DELETE", "/v2/playbooks/{playbook_id:int}", REMEDIATION + "DeletePlaybook", "Delete a playbook",
             message="Playbook deleted."),
    RpcRoute("POST", "/v2/playbooks/{playbook_id:int}/execute", REMEDIATION + "ExecutePlaybook",
             "Run a playbook by hand ({\"service_id\", \"variables\"}, both optional); 10 a minute per key",
             body=True, status=201, message="Playbook execution started successfully."),
    RpcRoute("GET", "/v2/playbooks/{playbook_id:int}/executions", REMEDIATION + "ListExecutions",
             "A playbook's executions, newest first, a page at a time", query=("status", "limit", "offset"),
             result="executions"),
    RpcRoute("GET", "/v2/executions", REMEDIATION + "ListExecutions",
             "Executions, newest first, a page at a time",
             query=("playbook_id", "service_id", "status", "limit", "offset"), result="executions"),
    RpcRoute("GET", "/v2/executions/{execution_id:int}", REMEDIATION + "GetExecution",
             "An execution, step by step, with its events", result="execution"),
    RpcRoute("POST", "/v2/executions/{execution_id:int}/approve", REMEDIATION + "ApproveExecution",
             "Approve an execution waiting for approval", result="execution", message="Execution approved."),
    RpcRoute("POST", "/v2/executions/{execution_id:int}/reject", REMEDIATION + "RejectExecution",
             "Reject an execution waiting for approval", result="execution", message="Execution rejected."),
    RpcRoute("POST", "/v2/executions/{execution_id:int}/cancel", REMEDIATION + "CancelExecution",
             "Cancel an execution that has not ended", result="execution", message="Execution cancelled."),
    RpcRoute("PUT", "/v2/secrets/{name}", REMEDIATION + "PutSecret",
             "Store a step secret ({\"value\": ...}), encrypted; the value is never returned", body=True,
             result="secret", message="Secret stored."),
    RpcRoute("GET", "/v2/secrets", REMEDIATION + "ListSecrets", "List secrets (names only)", result="secrets"),
    RpcRoute("DELETE", "/v2/secrets/{name}", REMEDIATION + "DeleteSecret", "Delete a secret",
             message="Secret deleted."),
]
