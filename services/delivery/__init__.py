"""The delivery domain: a durable outbox and the Slack / PagerDuty / webhook senders."""
