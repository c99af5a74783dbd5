"""Approval requests posted to Slack, with Approve and Reject buttons.

``chat.postMessage`` to MEDIC_SLACK_APPROVAL_CHANNEL (else MEDIC_SLACK_DEFAULT_CHANNEL)
with MEDIC_SLACK_TOKEN; nothing is posted without a token and a channel. The
buttons' ``action_id`` (``approve_playbook`` / ``reject_playbook``) and ``value``
(the execution id) come back to the gateway's ``POST /v2/slack/interactions``,
signed by Slack. A failed post raises ``Unavailable``: the engine posts it again
when the execution's lease ends (it stays waiting for approval meanwhile, and
can be approved by the API).

Once decided (approved or rejected by anyone, approved by its timeout, or
cancelled), the message is replaced (``chat.update`` on the channel and ``ts``
that ``chat.postMessage`` answered, kept with the execution) by the same text
with who decided instead of the buttons, so nobody clicks a decided request
(a request decided while it was being posted is updated once the post answers).
That update is best effort: when Slack refuses it, the buttons stay, and a
click on one answers that the execution is no longer waiting.
"""
from __future__ import annotations

import json
import logging

import urllib3

from medic.db import Row
from medic.errors import Unavailable

log = logging.getLogger(__name__)


DECIDED_HEADERS = {"approved": ":white_check_mark: Playbook Approved", "rejected": ":x: Playbook Rejected",
                   "cancelled": ":no_entry_sign: Playbook Cancelled"}


def _summary(execution: Row, header: str) -> list[dict]:
    service = execution["variables"].get("SERVICE_NAME") or "(no service)"
    lines = [f"*Playbook:* `{execution['playbook_name']}`", f"*Service:* `{service}`",
             f"*Execution ID:* `{execution['execution_id']}`"]
    return [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]


def decider(by: str) -> str:
    """Who decided, as Slack shows it: a Slack user as a mention."""
    if by.startswith("slack:"):
        return f"<@{by.removeprefix('slack:')}>"
    # Slack's three control characters, so that a name cannot mention a channel.
    return by.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def decided_blocks(execution: Row, outcome: str, by: str) -> list[dict]:
    """The approval request once decided: its summary and who decided, no buttons."""
    verb = {"approved": "Approved", "rejected": "Rejected", "cancelled": "Cancelled"}[outcome]
    who = "automatically: no decision within its timeout" if by == "timeout" else f"by {decider(by)}"
    return _summary(execution, DECIDED_HEADERS[outcome]) + [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{verb} {who}"}]}]


def approval_blocks(execution: Row) -> list[dict]:
    execution_id = execution["execution_id"]
    blocks = _summary(execution, ":hourglass: Playbook Approval Required")
    if execution["approval_deadline"] is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f":clock3: _Approved automatically at {execution['approval_deadline']:%Y-%m-%d %H:%M:%S %Z} "
            "without a decision_")}]})
    blocks += [{"type": "divider"},
               {"type": "actions", "block_id": f"approval_actions_{execution_id}", "elements": [
                   {"type": "button", "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                    "style": "primary", "action_id": "approve_playbook", "value": str(execution_id)},
                   {"type": "button", "text": {"type": "plain_text", "text": "Reject", "emoji": True},
                    "style": "danger", "action_id": "reject_playbook", "value": str(execution_id)}]}]
    return blocks


class SlackApprovals:
    def __init__(self, api_url: str, token: str, channel: str, timeout: float = 10.0):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.channel = channel
        self.timeout = timeout
        self._pool = urllib3.PoolManager(retries=False)

    @property
    def enabled(self) -> bool:
        return bool(self.token and self.channel)

    def post(self, execution: Row) -> tuple[str, str] | None:
        """Posts the approval request; (channel, ts) of the message, None when
        nothing is posted (no token or channel)."""
        if not self.enabled:
            return None
        body = {"channel": self.channel, "blocks": approval_blocks(execution),
                "text": f"Approval required: playbook {execution['playbook_name']} "
                        f"(execution {execution['execution_id']})"}
        answer = self._call("chat.postMessage", body, "posting the approval request")
        log.info("approval request of execution %s posted to Slack channel %s", execution["execution_id"],
                 self.channel)
        return str(answer.get("channel") or self.channel), str(answer.get("ts") or "")

    def decided(self, execution: Row, outcome: str, by: str) -> None:
        """Replaces the posted request (if any) with its outcome and who decided."""
        channel, ts = execution.get("approval_message_channel"), execution.get("approval_message_ts")
        if not (self.token and channel and ts):
            return
        body = {"channel": channel, "ts": ts, "blocks": decided_blocks(execution, outcome, by),
                "text": f"Playbook {execution['playbook_name']} (execution {execution['execution_id']}): {outcome}"}
        self._call("chat.update", body, "updating the approval request")

    def _call(self, method: str, body: dict, doing: str) -> dict:
        try:
            response = self._pool.request(
                "POST", f"{self.api_url}/{method}", body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {self.token}"},
                timeout=self.timeout)
            answer = json.loads(response.data or b"{}")
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            raise Unavailable(f"{doing} in Slack failed: {type(exc).__name__}") from None
        if response.status != 200 or not answer.get("ok"):
            raise Unavailable(f"Slack refused {doing}: {answer.get('error') or response.status}")
        return answer
