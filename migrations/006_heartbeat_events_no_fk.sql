-- heartbeat_events loses its foreign key to services.
--
-- The key's check cost every recorded heartbeat a lookup in services (13 us per
-- row, 15-20 % of the ingest statement; docs/performance.md, third session), to
-- prove what the ingest already holds: it inserts events only for services it
-- has just locked (FOR NO KEY UPDATE, in the same transaction). Deleting a
-- service (FOR UPDATE on the same row, so never concurrently with an ingest of
-- it) now deletes its events itself, in the same transaction, instead of
-- ON DELETE CASCADE.
ALTER TABLE heartbeat_events DROP CONSTRAINT heartbeat_events_service_id_fkey;
