-- Who did what (GET /v2/audit-logs?actor=X, ListAuditEvents.actor): the actor
-- filter matches the caller's X-Actor, the API key's name or its id, so one
-- index per column, each in the log's order, so that a page of one person's
-- or one key's changes is three short index range scans however large the
-- log, and its total an index-only count of their entries.
CREATE INDEX audit_events_actor_idx ON audit_events (actor, at DESC, event_id DESC) WHERE actor IS NOT NULL;
CREATE INDEX audit_events_key_name_idx ON audit_events (key_name, at DESC, event_id DESC)
    WHERE key_name IS NOT NULL;
CREATE INDEX audit_events_key_id_idx ON audit_events (key_id, at DESC, event_id DESC) WHERE key_id IS NOT NULL;

-- The exact totals of the unfiltered log and of one actor's events, without
-- counting millions of rows per query (GET /v2/audit-logs answers a total, as
-- the original does; an index-only count of 10,000,000 events takes seconds).
-- Heartbeat domain (the log's reader and pruner). The events up to
-- `sealed_upto` are tallied by who wrote them ('' for none); a total is the
-- tally plus a count of the events after it. Retention seals a later id once
-- every transaction that could still write an event at or below it has ended
-- (`candidate_xmax`), and takes what it deletes out of the tally in the same
-- statement, so a total stays exact.
CREATE TABLE audit_event_tally (
    actor    text NOT NULL,
    key_name text NOT NULL,
    key_id   text NOT NULL,
    events   bigint NOT NULL,
    PRIMARY KEY (actor, key_name, key_id)
);
CREATE INDEX audit_event_tally_key_name_idx ON audit_event_tally (key_name);
CREATE INDEX audit_event_tally_key_id_idx ON audit_event_tally (key_id);

CREATE TABLE audit_event_tally_mark (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    sealed_upto    bigint NOT NULL DEFAULT 0,
    candidate      bigint,
    candidate_xmax xid8,
    candidate_at   timestamptz
);
INSERT INTO audit_event_tally_mark DEFAULT VALUES;
