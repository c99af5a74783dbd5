-- Alert lifecycle (heartbeat domain): the notification outbox, reminders,
-- mute expiry and the history of each service's state changes.

-- When the next REMINDER of an active alert is due, and how many were made.
ALTER TABLE alerts ADD COLUMN next_reminder_at timestamptz;
ALTER TABLE alerts ADD COLUMN reminders integer NOT NULL DEFAULT 0;
CREATE INDEX alerts_reminder_due_idx ON alerts (next_reminder_at) WHERE active;

-- The outbox of the hand-off to routing: one row per TRIGGER / REMINDER /
-- RESOLVE, written in the same transaction as the change it reports, and
-- marked handed off only once routing accepted it. event_id is the
-- idempotency key routing and delivery deduplicate on.
CREATE TABLE alert_notifications (
    notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('trigger', 'reminder', 'resolve')),
    event_id        text NOT NULL UNIQUE,
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Earliest next hand-off attempt (moves back after a failed attempt).
    due_at          timestamptz NOT NULL DEFAULT now(),
    handed_off_at   timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text
);
-- The dispatcher reads only what is still to hand off.
CREATE INDEX alert_notifications_pending_idx ON alert_notifications (due_at) WHERE handed_off_at IS NULL;
CREATE INDEX alert_notifications_alert_idx ON alert_notifications (alert_id, notification_id);

-- Mutes expire: the monitor reads only muted services.
CREATE INDEX services_muted_idx ON services (muted_at) WHERE muted;

-- Every state change of a service, with its time and why.
CREATE TABLE service_transitions (
    transition_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id    bigint NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    from_state    text NOT NULL,
    to_state      text NOT NULL,
    -- missed_heartbeats | reported_failure | recovered | deactivated | activated | manual | muted | unmuted | mute_expired
    reason        text NOT NULL,
    alert_id      bigint,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_transitions_service_idx ON service_transitions (service_id, transition_id DESC);

-- Down services, counted for the medic_services_down gauge without a scan.
CREATE INDEX services_down_idx ON services (service_id) WHERE active AND state = 'down';
