"""Approval requests posted to Slack, with Approve and Reject buttons.

``chat.postMessage`` to MEDIC_SLACK_APPROVAL_CHANNEL (else MEDIC_SLACK_DEFAULT_CHANNEL)
with MEDIC_SLACK_TOKEN; nothing is posted without a token and a channel. The
buttons' ``action_id`` (``approve_playbook`` / ``reject_playbook``) and ``value``
(the execution id) come back to the gateway's ``POST /v2/slack/interactions``,
signed by Slack. A failed post raises ``Unavailable``: the engine posts it again
when the execution's lease ends (it stays waiting for approval meanwhile, and
can be approved by the API).
"""
from __future__ import annotations

import json
import logging

import urllib3

from medic.db import Row
from medic.errors import Unavailable

log = logging.getLogger(__name__)


def approval_blocks(execution: Row) -> list[dict]:
    execution_id = execution["execution_id"]
    service = execution["variables"].get("SERVICE_NAME") or "(no service)"
    lines = [f"*Playbook:* `{execution['playbook_name']}`", f"*Service:* `{service}`",
             f"*Execution ID:* `{execution_id}`"]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": ":hourglass: Playbook Approval Required",
                                    "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
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

    def post(self, execution: Row) -> None:
        if not self.enabled:
            return
        body = {"channel": self.channel, "blocks": approval_blocks(execution),
                "text": f"Approval required: playbook {execution['playbook_name']} "
                        f"(execution {execution['execution_id']})"}
        try:
            response = self._pool.request(
                "POST", f"{self.api_url}/chat.postMessage", body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {self.token}"},
                timeout=self.timeout)
            answer = json.loads(response.data or b"{}")
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            raise Unavailable(f"posting the approval request to Slack failed: {type(exc).__name__}") from None
        if response.status != 200 or not answer.get("ok"):
            raise Unavailable(f"Slack refused the approval request: {answer.get('error') or response.status}")
        log.info("approval request of execution %s posted to Slack channel %s", execution["execution_id"],
                 self.channel)
