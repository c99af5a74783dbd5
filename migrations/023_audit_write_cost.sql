-- What an audited change costs: the audit log's length limits as column types
-- instead of CHECK constraints, and a team update that returns the team as it was.
--
-- Every audited change inserts one audit_events row in its own transaction, so
-- what the insert costs is added to every management RPC. PostgreSQL prepares a
-- table's CHECK expressions afresh for each statement that writes it: the five
-- length checks cost an UpdateTeam ~30 µs of ~1.2 ms (half of what its event
-- cost), where a varchar(n) length limit is part of the statement's plan and costs
-- nothing measurable (docs/performance.md, "Audit overhead").
--
-- The writers are Medic's own services through medic.audit, which also refuses
-- an empty source, action type or resource before it reaches the table (a check
-- the table no longer repeats). Changing a column from text to varchar(n)
-- rewrites the table once, under an exclusive lock: on a log of millions of
-- events, run this migration in a quiet moment.
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_source_check,
    DROP CONSTRAINT audit_events_action_type_check,
    DROP CONSTRAINT audit_events_resource_check,
    DROP CONSTRAINT audit_events_resource_id_check,
    DROP CONSTRAINT audit_events_actor_check,
    ALTER COLUMN source TYPE varchar(64),
    ALTER COLUMN action_type TYPE varchar(64),
    ALTER COLUMN resource TYPE varchar(64),
    ALTER COLUMN resource_id TYPE varchar(255),
    ALTER COLUMN actor TYPE varchar(255);

-- A snapshot is written before each destructive change to a service, in its
-- transaction, for the same reason.
ALTER TABLE service_snapshots
    DROP CONSTRAINT service_snapshots_action_type_check,
    ALTER COLUMN action_type TYPE varchar(64);

-- Routing domain: a team as it was before its last update, written by that
-- update (services/routing/team_store.py), so that the update returns it for
-- its audit event without reading the row a second time.
ALTER TABLE teams ADD COLUMN audit_before jsonb;
