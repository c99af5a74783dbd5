"""The routing service: teams, notification targets and the choice of who hears about an alert.

- ``app``: assembles the process.
- ``servicer``: protobuf <-> domain values; errors become status codes in the shared interceptor.
- pure rules: ``selection`` (who hears about an alert event, in which mode).
- ``router``: routes a batch of events (reads, selection, hand-off to delivery, remembering routes).
- stores, one per aggregate: ``team_store``, ``target_store``, ``route_store`` (alert routes, and
  what routing reads for a batch of events).
- ``delivery_client``: the outgoing calls to DeliveryService.
- ``metrics``: every metric of the service.
"""
