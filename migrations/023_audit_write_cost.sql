-- What an audited change costs: the audit log without CHECK constraints, and a
-- team update that returns the team as it was.
--
-- Every audited change inserts one audit_events row in its own transaction, so
-- what the insert costs is added to every management RPC. PostgreSQL prepares a
-- table's CHECK expressions afresh for each statement that writes it: the five
-- length checks cost an UpdateTeam ~30 µs of ~1.2 ms, half of what its event
-- cost (docs/performance.md, "Audit overhead"). The limits stay where every
-- event is made: medic.audit refuses an empty or over-long source, action type
-- or resource, a resource id or actor over 255 characters (its writers are
-- Medic's own services, through it). Dropping a constraint is instant; changing
-- the columns to varchar(n) would have kept the limits in the table at no cost
-- per insert, but rewrites the table under an exclusive lock: minutes of every
-- audited change waiting, on a log of millions of events.
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_source_check,
    DROP CONSTRAINT audit_events_action_type_check,
    DROP CONSTRAINT audit_events_resource_check,
    DROP CONSTRAINT audit_events_resource_id_check,
    DROP CONSTRAINT audit_events_actor_check;

-- A snapshot is written before each destructive change to a service, in its
-- transaction, for the same reason (its action types are medic.audit's).
ALTER TABLE service_snapshots DROP CONSTRAINT service_snapshots_action_type_check;

-- Routing domain: a team as it was before its last update, written by that
-- update (services/routing/team_store.py), so that the update returns it for
-- its audit event without reading the row a second time.
ALTER TABLE teams ADD COLUMN audit_before jsonb;
