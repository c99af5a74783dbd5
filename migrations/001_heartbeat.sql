-- Heartbeat domain (owned by the heartbeat service): services, heartbeat_events, alerts.

CREATE TABLE services (
    service_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    heartbeat_name         text NOT NULL CHECK (length(heartbeat_name) BETWEEN 1 AND 255),
    service_name           text NOT NULL CHECK (length(service_name) BETWEEN 1 AND 255),
    alert_interval_seconds integer NOT NULL CHECK (alert_interval_seconds >= 1),
    threshold              integer NOT NULL DEFAULT 1 CHECK (threshold >= 1),
    grace_period_seconds   integer NOT NULL DEFAULT 0 CHECK (grace_period_seconds >= 0),
    team                   text NOT NULL DEFAULT 'site-reliability',
    priority               text NOT NULL DEFAULT 'p3' CHECK (priority IN ('p1', 'p2', 'p3', 'p4', 'p5')),
    runbook                text,
    notify_mode            text NOT NULL DEFAULT 'all' CHECK (notify_mode IN ('all', 'until_success')),
    active                 boolean NOT NULL DEFAULT true,
    muted                  boolean NOT NULL DEFAULT false,
    muted_at               timestamptz,
    state                  text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'up', 'down')),
    -- Times of the most recent counting heartbeats, newest first, at most
    -- `threshold` of them: h_k of the down rule without reading heartbeat_events.
    recent_beats           timestamptz[] NOT NULL DEFAULT '{}',
    -- Registration or last re-activation: the clock of the down rule starts here.
    activated_at           timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at      timestamptz,
    -- When the service becomes overdue (NULL while inactive).
    deadline_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- heartbeat_name is unique case-insensitively, and looked up that way on every heartbeat.
CREATE UNIQUE INDEX services_heartbeat_name_key ON services (lower(heartbeat_name));
CREATE INDEX services_service_name_idx ON services (service_name);
-- The monitor reads only what is due: active services not already down, by deadline.
CREATE INDEX services_due_idx ON services (deadline_at) WHERE active AND state <> 'down';

CREATE TABLE heartbeat_events (
    heartbeat_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id   bigint NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    time         timestamptz NOT NULL,
    status       text NOT NULL CHECK (length(status) BETWEEN 1 AND 64),
    run_id       text CHECK (length(run_id) <= 255)
);

-- "The last k heartbeats of a service" (down-rule re-checks, GET /heartbeat by name).
CREATE INDEX heartbeat_events_service_time_idx ON heartbeat_events (service_id, time DESC);
-- Newest heartbeats across all services (GET /heartbeat without a filter) and retention.
CREATE INDEX heartbeat_events_time_idx ON heartbeat_events (time);

CREATE TABLE alerts (
    alert_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id         bigint NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    reason             text NOT NULL CHECK (reason IN ('missed_heartbeats', 'reported_failure')),
    active             boolean NOT NULL DEFAULT true,
    opened_at          timestamptz NOT NULL DEFAULT now(),
    closed_at          timestamptz,
    notification_count integer NOT NULL DEFAULT 0,
    CHECK (active = (closed_at IS NULL))
);

-- At most one active alert per service, enforced by the database.
CREATE UNIQUE INDEX alerts_one_active_per_service ON alerts (service_id) WHERE active;
CREATE INDEX alerts_service_idx ON alerts (service_id, alert_id DESC);
