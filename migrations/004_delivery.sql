-- Delivery domain (owned by the delivery service): webhooks, deliveries.
-- service_id / alert_id / target_id are ids of other domains: no foreign keys,
-- a service reads and writes only its own tables.

CREATE TABLE webhooks (
    webhook_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- NULL: a global subscription (every service).
    service_id bigint,
    headers    jsonb NOT NULL DEFAULT '{}',
    -- `whsec_` + base64 key; NULL: deliveries are not signed.
    secret     text,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_service_idx ON webhooks (service_id);

-- The outbox: one row per (event, destination). Tracking is per delivery with
-- an attempt count; the last_* columns describe the most recent attempt.
CREATE TABLE deliveries (
    delivery_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id           text NOT NULL,
    -- Place in the plan: targets 0..n-1 in priority order, then subscriptions.
    position           integer NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('trigger', 'reminder', 'resolve')),
    alert_id           bigint NOT NULL,
    service_id         bigint NOT NULL,
    target_type        text NOT NULL CHECK (target_type IN ('slack', 'pagerduty', 'webhook')),
    target_id          bigint,
    webhook_id         bigint,
    mode               text NOT NULL CHECK (mode IN ('all', 'until_success')),
    -- True for targets delivered one after the other (NOTIFY_MODE_UNTIL_SUCCESS).
    in_chain           boolean NOT NULL DEFAULT false,
    config             jsonb NOT NULL,
    -- The alert event (facts the payloads are built from).
    event              jsonb NOT NULL,
    -- Groups deliveries for per-destination concurrency limits (host or channel).
    destination_key    text NOT NULL,
    idempotency_key    text NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'retrying', 'success', 'failed', 'skipped')),
    attempts           integer NOT NULL DEFAULT 0,
    -- Attempts since the last manual retry: the retry schedule counts these.
    round_attempts     integer NOT NULL DEFAULT 0,
    -- When a worker may (re)claim it; NULL: nothing planned (finished, or waiting
    -- for an earlier target in a chain). A claim moves it to the lease's end,
    -- so a crashed worker's delivery becomes due again by itself.
    next_attempt_at    timestamptz,
    -- Token of the current claim: only its holder may record the attempt.
    claim_token        uuid,
    last_attempt_at    timestamptz,
    last_response_code integer,
    last_response_body text,
    last_error         text,
    last_latency_ms    integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, position)
);

-- Workers read only what is due.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL AND status IN ('pending', 'retrying');
CREATE INDEX deliveries_alert_idx ON deliveries (alert_id, delivery_id DESC);
-- "Is an earlier event for this alert still unsent?" (events go out in order).
CREATE INDEX deliveries_unfinished_alert_idx ON deliveries (alert_id, destination_key, delivery_id)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_service_idx ON deliveries (service_id, delivery_id DESC);
CREATE INDEX deliveries_target_idx ON deliveries (target_id, delivery_id DESC) WHERE target_id IS NOT NULL;
CREATE INDEX deliveries_webhook_idx ON deliveries (webhook_id, delivery_id DESC) WHERE webhook_id IS NOT NULL;
CREATE INDEX deliveries_status_idx ON deliveries (status, delivery_id DESC);
