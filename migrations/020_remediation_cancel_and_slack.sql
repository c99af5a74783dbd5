-- Remediation (issue 24): a wait or condition step ends 'cancelled' when its
-- execution is cancelled; and where the approval request was posted in Slack
-- (channel and message ts, from chat.postMessage), so that the message can be
-- updated with the decision (chat.update) and its buttons removed.
ALTER TABLE playbook_step_results DROP CONSTRAINT playbook_step_results_status_check;
ALTER TABLE playbook_step_results ADD CONSTRAINT playbook_step_results_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped', 'cancelled'));

ALTER TABLE playbook_executions ADD COLUMN approval_message_channel text;
ALTER TABLE playbook_executions ADD COLUMN approval_message_ts text;
