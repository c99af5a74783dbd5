-- Quiet hours: maintenance windows, mutes with a reason and an end,
-- acknowledgements, working hours on notification targets, and a record of
-- every notification that was not sent and why.

-- Heartbeat domain ---------------------------------------------------------------

-- A maintenance window: while it is open, alerts of the services in its scope
-- are recorded but not notified; when it ends on a service still down, the
-- alert is notified at once. One-off (starts_at .. ends_at) or recurring (a
-- cron expression in an IANA time zone, each occurrence lasting
-- duration_seconds). See services/heartbeat/windows.py.
CREATE TABLE maintenance_windows (
    window_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- service: one service; team: services whose team name matches
    -- (case-insensitively); all: every service; glob: services whose
    -- heartbeat name matches name_glob (case-insensitively).
    scope            text NOT NULL CHECK (scope IN ('service', 'team', 'all', 'glob')),
    service_id       bigint REFERENCES services (service_id) ON DELETE CASCADE,
    team             text CHECK (length(team) BETWEEN 1 AND 255),
    name_glob        text CHECK (length(name_glob) BETWEEN 1 AND 255),
    starts_at        timestamptz,
    ends_at          timestamptz,
    cron             text CHECK (length(cron) BETWEEN 1 AND 255),
    duration_seconds integer CHECK (duration_seconds BETWEEN 60 AND 31536000),
    timezone         text CHECK (length(timezone) BETWEEN 1 AND 64),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    created_by       text NOT NULL,
    -- For announcing the start and end to the services' targets (not built yet: stays false).
    announce         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'service') = (service_id IS NOT NULL)),
    CHECK ((scope = 'team') = (team IS NOT NULL)),
    CHECK ((scope = 'glob') = (name_glob IS NOT NULL)),
    -- Exactly one of one-off and recurring.
    CHECK ((starts_at IS NOT NULL AND ends_at IS NOT NULL AND ends_at > starts_at
            AND cron IS NULL AND duration_seconds IS NULL AND timezone IS NULL)
        OR (starts_at IS NULL AND ends_at IS NULL
            AND cron IS NOT NULL AND duration_seconds IS NOT NULL AND timezone IS NOT NULL))
);
CREATE INDEX maintenance_windows_service_idx ON maintenance_windows (service_id) WHERE service_id IS NOT NULL;

-- Bumped in the transaction of every change to maintenance_windows: a process
-- keeps the windows in memory and reloads them only when this moved (one row,
-- one cheap read per monitor pass).
CREATE TABLE maintenance_windows_generation (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO maintenance_windows_generation DEFAULT VALUES;

-- Start and end announcements already made, one per window occurrence and
-- service, so that several monitors never announce twice (not built yet).
CREATE TABLE window_announcements (
    window_id    bigint NOT NULL REFERENCES maintenance_windows (window_id) ON DELETE CASCADE,
    service_id   bigint NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    occurrence   timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('start', 'end')),
    announced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_id, occurrence, kind, service_id)
);

-- The state change a window kept quiet names it (no foreign key: history stays
-- when the window is deleted).
ALTER TABLE service_transitions ADD COLUMN suppressed_by bigint;

-- A mute: why, by whom, and until when (NULL: until the service recovers, at
-- most MEDIC_MUTE_TTL_SECONDS).
ALTER TABLE services ADD COLUMN mute_reason text CHECK (length(mute_reason) <= 1000);
ALTER TABLE services ADD COLUMN muted_by text;
ALTER TABLE services ADD COLUMN muted_until timestamptz;
CREATE INDEX services_muted_until_idx ON services (muted_until) WHERE muted AND muted_until IS NOT NULL;

-- Acknowledged alerts get no reminders; the window that last held back an
-- alert's notification (its next_reminder_at is that window's end, when the
-- notification goes out if the alert is still open).
ALTER TABLE alerts ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE alerts ADD COLUMN acknowledged_by text;
ALTER TABLE alerts ADD COLUMN suppressed_by bigint;
CREATE INDEX alerts_suppressed_by_idx ON alerts (suppressed_by) WHERE active AND suppressed_by IS NOT NULL;

-- Every notification of an alert that was not handed off, with the one reason
-- (services/heartbeat/lifecycle.py decide_notification): window, muted,
-- acknowledged, never_notified.
CREATE TABLE notification_skips (
    skip_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   bigint NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('trigger', 'reminder', 'resolve', 'acknowledge')),
    reason     text NOT NULL CHECK (reason IN ('window', 'muted', 'acknowledged', 'never_notified')),
    window_id  bigint,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_skips_alert_idx ON notification_skips (alert_id, skip_id);

-- An acknowledgement goes through the outbox like the other notifications.
ALTER TABLE alert_notifications DROP CONSTRAINT IF EXISTS alert_notifications_kind_check;
ALTER TABLE alert_notifications ADD CONSTRAINT alert_notifications_kind_check
    CHECK (kind IN ('trigger', 'reminder', 'resolve', 'acknowledge'));

-- Routing domain -----------------------------------------------------------------

-- Working hours of a target: {"days": ["mon", ...], "from": "09:00", "to":
-- "17:00", "timezone": "Europe/Berlin"}; NULL: always (services/routing/active_hours.py).
ALTER TABLE notification_targets ADD COLUMN active_hours jsonb
    CHECK (active_hours IS NULL OR jsonb_typeof(active_hours) = 'object');

-- Targets an event was not sent to and why (outside_active_hours), per event.
-- alert_id is the heartbeat domain's: no foreign key.
CREATE TABLE target_skips (
    skip_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id  bigint NOT NULL,
    event_id  text NOT NULL,
    kind      text NOT NULL,
    target_id bigint NOT NULL,
    reason    text NOT NULL CHECK (reason IN ('outside_active_hours')),
    at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, target_id)
);
CREATE INDEX target_skips_alert_idx ON target_skips (alert_id, skip_id);

-- Delivery domain ----------------------------------------------------------------

-- PagerDuty hears of an acknowledgement.
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check
    CHECK (kind IN ('trigger', 'reminder', 'resolve', 'acknowledge'));
