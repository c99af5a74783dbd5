"""Local stand-ins for the services Medic talks to over HTTP (Slack, PagerDuty,
webhook receivers, an OpenTelemetry collector). Real HTTP servers on loopback that record what they receive
and answer as scripted::

    with WebhookReceiver() as hook:
        hook.script(Reply(500), Reply(500), Reply(200))   # then the default
        ... point Medic at hook.url ...
        requests = hook.wait_for(3, timeout=10)
"""
from tests.fakes.receivers import (
    OtlpReceiver,
    PagerDutyReceiver,
    ReceivedSpan,
    ReceivedRequest,
    Receiver,
    Reply,
    SlackReceiver,
    WebhookReceiver,
    slack_error,
)

__all__ = ["OtlpReceiver", "PagerDutyReceiver", "ReceivedRequest", "ReceivedSpan", "Receiver", "Reply",
           "SlackReceiver", "WebhookReceiver", "slack_error"]
