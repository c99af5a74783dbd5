-- What an audited change costs: the audit log without CHECK constraints, and a
-- team update that returns the team as it was.
--
-- Every audited change inserts one audit_events row in its own transaction, so
-- what the insert costs is added to every management RPC. PostgreSQL prepares a
-- table's CHECK expressions afresh for each statement that writes it: the five
-- length checks cost UpdateTeam ~15 µs of ~1.2 ms (24-49 µs on the statement
-- alone), a fifth of what its event cost (docs/performance.md, "Audit
-- overhead"). The limits stay where every event is made: medic.audit refuses an
-- empty or over-long source, action type or resource, and a resource id or
-- actor over 255 characters (its writers are Medic's own services, through it).
-- Dropping a constraint changes no row; changing the columns to varchar(n)
-- would have kept the limits in the table at no cost per insert, but rewrites
-- the table under an exclusive lock: minutes of every audited change waiting,
-- on a log of millions of events.
--
-- Each ALTER below waits for the queries running on its table (a long audit
-- export) while every audited change queues behind it: give up after 10 s
-- instead; the upgrade stops and can be run again (docs/operations.md).
SET LOCAL lock_timeout = '10s';

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
-- its audit event without reading the row a second time. (It stays on the row
-- after audit retention has deleted the event: the team's previous name and
-- Slack channel, nothing secret.)
ALTER TABLE teams ADD COLUMN audit_before jsonb;
