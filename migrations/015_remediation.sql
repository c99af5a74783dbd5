-- Remediation (issue 24): playbooks and their durable executions (remediation
-- domain), and the heartbeat domain's outbox of alert events for it.

-- --- heartbeat domain: the hand-off to remediation -------------------------
-- One row per alert notification, written in the transaction that writes the
-- notification (services/heartbeat/outbox_store.py), handed to the remediation
-- service apart from the hand-off to routing: a remediation outage delays no
-- notification, and loses no event.
CREATE TABLE remediation_handoffs (
    notification_id bigint PRIMARY KEY REFERENCES alert_notifications (notification_id) ON DELETE CASCADE,
    alert_id        bigint NOT NULL,
    due_at          timestamptz NOT NULL DEFAULT now(),
    handed_off_at   timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX remediation_handoffs_pending_idx ON remediation_handoffs (due_at) WHERE handed_off_at IS NULL;
CREATE INDEX remediation_handoffs_alert_idx ON remediation_handoffs (alert_id, notification_id);

-- --- remediation domain ----------------------------------------------------
CREATE TABLE playbooks (
    playbook_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                     text NOT NULL,
    description              text NOT NULL DEFAULT '',
    yaml                     text NOT NULL,
    -- The parsed document (services/remediation/playbook.py), so that an
    -- execution copies it without parsing again.
    definition               jsonb NOT NULL,
    approval                 text NOT NULL CHECK (approval IN ('none', 'required', 'timeout')),
    approval_timeout_minutes integer,
    version                  integer NOT NULL DEFAULT 1,
    -- NULL: started only by hand or by webhook.
    service_pattern          text,
    consecutive_failures     integer NOT NULL DEFAULT 1,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX playbooks_name_key ON playbooks (lower(name));

-- service_id and alert_id name the heartbeat domain's rows without a foreign
-- key (another service's tables): the facts an execution needs are copied in.
CREATE TABLE playbook_executions (
    execution_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    playbook_id       bigint REFERENCES playbooks (playbook_id) ON DELETE SET NULL,
    playbook_name     text NOT NULL,
    -- The playbook as it was when the execution started.
    definition        jsonb NOT NULL,
    service_id        bigint,
    alert_id          bigint,
    trigger           text NOT NULL CHECK (trigger IN ('alert', 'api', 'webhook')),
    status            text NOT NULL CHECK (status IN ('pending_approval', 'running', 'waiting', 'completed',
                                                      'failed', 'cancelled', 'rejected')),
    current_step      integer NOT NULL DEFAULT 0,
    -- ${NAME} values (SERVICE_NAME, ALERT_ID, the caller's variables).
    variables         jsonb NOT NULL DEFAULT '{}',
    approval          text NOT NULL,
    approval_deadline timestamptz,
    decided_by        text,
    decided_at        timestamptz,
    -- When the approval request was posted to Slack (NULL: not yet, or no Slack).
    approval_posted_at timestamptz,
    -- When a worker should look at it next; NULL: nothing to do by itself
    -- (ended, or waiting for a person).
    due_at            timestamptz,
    error             text,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX playbook_executions_due_idx ON playbook_executions (due_at) WHERE due_at IS NOT NULL;
-- An alert starts a playbook once.
CREATE UNIQUE INDEX playbook_executions_alert_key ON playbook_executions (alert_id, playbook_id)
    WHERE alert_id IS NOT NULL;
-- The circuit breaker counts a service's executions in its window.
CREATE INDEX playbook_executions_service_idx ON playbook_executions (service_id, created_at);
CREATE INDEX playbook_executions_playbook_idx ON playbook_executions (playbook_id, execution_id DESC);

CREATE TABLE playbook_step_results (
    execution_id bigint NOT NULL REFERENCES playbook_executions (execution_id) ON DELETE CASCADE,
    step_index   integer NOT NULL,
    name         text NOT NULL,
    type         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped')),
    started_at   timestamptz,
    completed_at timestamptz,
    -- Times the step was started (> 1: resumed after a crash mid-step).
    attempts     integer NOT NULL DEFAULT 0,
    output       text NOT NULL DEFAULT '',
    error        text NOT NULL DEFAULT '',
    PRIMARY KEY (execution_id, step_index)
);

-- What happened to each execution, in order (services/remediation/events.py).
CREATE TABLE playbook_execution_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id bigint NOT NULL REFERENCES playbook_executions (execution_id) ON DELETE CASCADE,
    kind         text NOT NULL,
    actor        text NOT NULL,
    step_index   integer,
    detail       text NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX playbook_execution_events_execution_idx ON playbook_execution_events (execution_id, event_id);

-- Each open alert's consecutive failures as remediation saw them (its TRIGGER
-- counts 1, each REMINDER one more), and the events already taken (the
-- hand-off may repeat one).
CREATE TABLE remediation_alerts (
    alert_id       bigint PRIMARY KEY,
    service_id     bigint NOT NULL,
    failures       integer NOT NULL DEFAULT 0,
    resolved_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE remediation_alert_events (
    event_id    text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Circuit breaker trips: one row per trip (a service's executions reached the
-- limit in the window); executions refused while it is open are counted on it.
CREATE TABLE remediation_breaker_trips (
    trip_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id  bigint NOT NULL,
    playbook_id bigint,
    tripped_at  timestamptz NOT NULL,
    open_until  timestamptz NOT NULL,
    refused     integer NOT NULL DEFAULT 1
);
CREATE INDEX remediation_breaker_trips_service_idx ON remediation_breaker_trips (service_id, open_until DESC);

-- Step secrets, AES-256-GCM (services/remediation/secrets.py): the nonce, and
-- the ciphertext with its tag; key_id names the key (a digest of it, never the key).
CREATE TABLE remediation_secrets (
    name       text PRIMARY KEY,
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    key_id     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
