"""The heartbeat service: services, their heartbeats, and the alerts opened when they fall silent.

- ``app``: assembles the process (and the monitor process).
- ``servicer``: protobuf <-> domain values; errors become status codes in the shared interceptor.
- pure rules: ``status`` (status words, failures), ``deadline`` (the down rule),
  ``lifecycle`` (service states, alerts, notifications: the one state machine).
- stores, one per aggregate: ``service_store`` (services), ``heartbeat_store`` (heartbeat
  events: the tuned ingest, listing, retention), ``alert_store`` (alerts and transitions:
  carries out lifecycle decisions, the monitor's claims), ``outbox_store`` (notifications to hand off).
- ``search``: read-only queries across those aggregates for the web console (service search and
  counts, recent transitions, a heartbeat timeline, alert search).
- workers: ``ingest`` (group commit), ``monitor``, ``handoff``, ``retention``.
- ``routing_client``: the outgoing calls to RoutingService.
- ``metrics``: every metric of the service.
"""
