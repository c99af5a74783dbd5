-- Services per condition (up, down, new, muted, inactive; see ServiceCondition
-- in heartbeat.proto) and in all, kept by triggers so that the console's
-- overview, its unfiltered services table and the monitor's gauges read a few
-- rows instead of counting every service (a scan of 100,000 services took
-- 60-150 ms on a loaded 2-core machine).
--
-- Each change appends a row of differences and a reader sums them: appending
-- never waits for another writer, where one shared counter row would make every
-- transaction that changes a state wait for the others' commits (and deadlock
-- two that lock the same services in another order). The monitor's gauge pass
-- folds the rows into one every few seconds (ServiceCounter.compact).
--
-- The conditions are those of services/heartbeat/search.py CONDITIONS; an
-- integration test compares these counts with a count of the table.
CREATE TABLE service_counts (
    up       bigint NOT NULL DEFAULT 0,
    down     bigint NOT NULL DEFAULT 0,
    new      bigint NOT NULL DEFAULT 0,
    muted    bigint NOT NULL DEFAULT 0,
    inactive bigint NOT NULL DEFAULT 0,
    total    bigint NOT NULL DEFAULT 0
);

-- Qualified names: a trigger runs with the search_path of whoever writes services.
-- Added or removed services (the statement's rows, as `changed`), or all of them.
CREATE FUNCTION count_added_or_removed_services() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM medic.service_counts;
        RETURN NULL;
    END IF;
    INSERT INTO medic.service_counts (up, down, new, muted, inactive, total)
    SELECT sign * count(*) FILTER (WHERE active AND state = 'up'), sign * count(*) FILTER (WHERE active AND state = 'down'),
           sign * count(*) FILTER (WHERE active AND state = 'new'), sign * count(*) FILTER (WHERE active AND muted),
           sign * count(*) FILTER (WHERE NOT active), sign * count(*)
    FROM changed HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_changed_service() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO medic.service_counts (up, down, new, muted, inactive)
    VALUES ((NEW.active AND NEW.state = 'up')::int - (OLD.active AND OLD.state = 'up')::int,
            (NEW.active AND NEW.state = 'down')::int - (OLD.active AND OLD.state = 'down')::int,
            (NEW.active AND NEW.state = 'new')::int - (OLD.active AND OLD.state = 'new')::int,
            (NEW.active AND NEW.muted)::int - (OLD.active AND OLD.muted)::int,
            (NOT NEW.active)::int - (NOT OLD.active)::int);
    RETURN NULL;
END
$$;

-- Only a row whose condition changed runs the function: a heartbeat that leaves
-- its service up costs the WHEN test alone.
CREATE TRIGGER services_changed_counts
    AFTER UPDATE OF state, active, muted ON services
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.active IS DISTINCT FROM NEW.active
          OR OLD.muted IS DISTINCT FROM NEW.muted)
    EXECUTE FUNCTION count_changed_service();

CREATE TRIGGER services_truncated_counts
    AFTER TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION count_added_or_removed_services();

CREATE TRIGGER services_added_counts
    AFTER INSERT ON services REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION count_added_or_removed_services();

CREATE TRIGGER services_removed_counts
    AFTER DELETE ON services REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION count_added_or_removed_services();

-- The triggers above hold a lock that keeps writers out until this commits, so
-- the starting count misses nothing.
INSERT INTO service_counts (up, down, new, muted, inactive, total)
SELECT count(*) FILTER (WHERE active AND state = 'up'), count(*) FILTER (WHERE active AND state = 'down'),
       count(*) FILTER (WHERE active AND state = 'new'), count(*) FILTER (WHERE active AND muted),
       count(*) FILTER (WHERE NOT active), count(*)
FROM services;
