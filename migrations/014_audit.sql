-- Change history (issue 23): the audit log and the service snapshots.
--
-- audit_events is the one table several services write: each Medic service
-- inserts the events of its own changes, in the transaction of the change (a
-- change cannot commit without its event). `source` names the writer; a
-- service inserts only rows with its own source and never updates or deletes
-- one. Only the heartbeat service reads it (ListAuditEvents) and prunes it
-- (retention). docs/architecture.md says why one shared table.
CREATE TABLE audit_events (
    event_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    source        text NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
    action_type   text NOT NULL CHECK (length(action_type) BETWEEN 1 AND 64),
    resource      text NOT NULL CHECK (length(resource) BETWEEN 1 AND 64),
    resource_id   text NOT NULL CHECK (length(resource_id) <= 255),
    -- The service the change concerns (a service, its target, its webhook, a
    -- remediation run on it); no foreign key: the history outlives the service.
    service_id    bigint,
    -- A remediation run's id (the original's execution_id filter).
    execution_id  bigint,
    -- Who: the API key (or `medic` for the service credential), and the
    -- caller's own X-Actor / x-medic-actor, when given.
    principal     text NOT NULL,
    key_id        text,
    key_name      text,
    actor         text CHECK (length(actor) <= 255),
    request_id    text,
    bulk_id       uuid,
    -- Before and after, as JSON; secrets never (a changed secret is "changed").
    before        jsonb,
    after         jsonb,
    details       jsonb
);

-- The newest first, over everything (the audit page, the default query).
CREATE INDEX audit_events_at_idx ON audit_events (at DESC, event_id DESC);
-- One service's history (`medic audit --service NAME`, the service page).
CREATE INDEX audit_events_service_idx ON audit_events (service_id, at DESC, event_id DESC)
    WHERE service_id IS NOT NULL;
CREATE INDEX audit_events_resource_idx ON audit_events (resource, resource_id, at DESC);
CREATE INDEX audit_events_execution_idx ON audit_events (execution_id, at DESC)
    WHERE execution_id IS NOT NULL;
CREATE INDEX audit_events_bulk_idx ON audit_events (bulk_id) WHERE bulk_id IS NOT NULL;

-- Heartbeat domain: a service's full settings (with its team and notification
-- targets) before each destructive change, to restore it (undo). No foreign
-- key: a deleted service's snapshots are how it comes back.
CREATE TABLE service_snapshots (
    snapshot_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id    bigint NOT NULL,
    heartbeat_name text NOT NULL,
    action_type   text NOT NULL CHECK (length(action_type) BETWEEN 1 AND 64),
    snapshot_data jsonb NOT NULL,
    actor         text,
    principal     text NOT NULL,
    request_id    text,
    bulk_id       uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    restored_at   timestamptz
);

CREATE INDEX service_snapshots_service_idx ON service_snapshots (service_id, created_at DESC);
CREATE INDEX service_snapshots_created_idx ON service_snapshots (created_at DESC);
CREATE INDEX service_snapshots_bulk_idx ON service_snapshots (bulk_id) WHERE bulk_id IS NOT NULL;
