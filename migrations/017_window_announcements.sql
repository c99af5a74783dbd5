-- Announcing maintenance windows (issue 22): a window with `announce` tells
-- each service it covers when an occurrence starts and ends
-- (services/heartbeat/announcements.py). The announcements travel the alerts'
-- path: the hand-off outbox, routing, delivery.

-- Heartbeat domain ---------------------------------------------------------------

-- An announcement is an outbox row of no alert: it names its service and
-- carries the window's facts as they were when it was made (the window may
-- change or go before it is handed off: no foreign key to it).
ALTER TABLE alert_notifications ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE alert_notifications ADD COLUMN service_id bigint REFERENCES services (service_id) ON DELETE CASCADE;
ALTER TABLE alert_notifications ADD COLUMN window_id bigint;
ALTER TABLE alert_notifications ADD COLUMN window_reason text;
ALTER TABLE alert_notifications ADD COLUMN window_starts_at timestamptz;
ALTER TABLE alert_notifications ADD COLUMN window_ends_at timestamptz;
ALTER TABLE alert_notifications DROP CONSTRAINT IF EXISTS alert_notifications_kind_check;
ALTER TABLE alert_notifications ADD CONSTRAINT alert_notifications_kind_check
    CHECK (kind IN ('trigger', 'reminder', 'resolve', 'acknowledge', 'window_started', 'window_ended'));
ALTER TABLE alert_notifications ADD CONSTRAINT alert_notifications_announcement_check
    CHECK (CASE WHEN kind IN ('window_started', 'window_ended')
                THEN alert_id IS NULL AND service_id IS NOT NULL AND window_id IS NOT NULL
                     AND window_reason IS NOT NULL AND window_starts_at IS NOT NULL AND window_ends_at IS NOT NULL
                ELSE alert_id IS NOT NULL END);
CREATE INDEX alert_notifications_service_idx ON alert_notifications (service_id) WHERE service_id IS NOT NULL;

-- The start claims of an occurrence still owed their end are looked up by
-- window and occurrence.
CREATE INDEX window_announcements_owed_idx ON window_announcements (window_id, occurrence, service_id)
    WHERE kind = 'start';

COMMENT ON COLUMN maintenance_windows.announce IS
    'Announce each occurrence''s start and end to the services in scope (services/heartbeat/announcements.py).';

-- Delivery domain ----------------------------------------------------------------

-- An announcement's deliveries belong to no alert.
ALTER TABLE deliveries ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check
    CHECK (kind IN ('trigger', 'reminder', 'resolve', 'acknowledge', 'window_started', 'window_ended'));
