-- The console's name search (SearchServices with a query) finds services whose
-- heartbeat or service name contains the query, case-insensitively. No btree
-- serves a substring, and pg_trgm is not in every PostgreSQL Medic runs on (the
-- embedded one has no contrib modules), so this keeps the same idea with
-- built-ins: each service's lower-cased names cut into trigrams, in a GIN index.
-- A name contains the query only if it holds every trigram of the query, so the
-- index narrows 100,000 services to a few candidates, which the search then
-- checks with its own substring test (0.1 ms instead of a 60-75 ms scan of
-- every name). Queries of 1-2 characters have no trigram and scan as before.
--
-- The trigrams live in a table of their own so that a heartbeat, which rewrites
-- its service's row, never touches them. Triggers keep them current: one per
-- INSERT statement (a bulk registration computes them in one pass) and one per
-- renamed row (column-specific: the ingest's updates do not name these
-- columns, so it does not fire for them).

-- Repeated trigrams are left in: containment and the GIN index ignore them, and
-- not sorting them out halves the cost of a registration.
CREATE FUNCTION name_trigrams(name text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT substr(name, i, 3) FROM generate_series(1, length(name) - 2) AS i)
$$;

CREATE TABLE service_name_trigrams (
    service_id bigint PRIMARY KEY REFERENCES services (service_id) ON DELETE CASCADE,
    trigrams   text[] NOT NULL
);

-- Qualified names: a trigger runs with the search_path of whoever writes services.
CREATE FUNCTION add_service_name_trigrams() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO medic.service_name_trigrams (service_id, trigrams)
    SELECT service_id, medic.name_trigrams(lower(heartbeat_name) || E'\n' || lower(service_name))
    FROM added;
    RETURN NULL;
END
$$;

CREATE FUNCTION renew_service_name_trigrams() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE medic.service_name_trigrams
    SET trigrams = medic.name_trigrams(lower(NEW.heartbeat_name) || E'\n' || lower(NEW.service_name))
    WHERE service_id = NEW.service_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER services_added_name_trigrams
    AFTER INSERT ON services REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION add_service_name_trigrams();

CREATE TRIGGER services_renamed_name_trigrams
    AFTER UPDATE OF heartbeat_name, service_name ON services
    FOR EACH ROW EXECUTE FUNCTION renew_service_name_trigrams();

INSERT INTO service_name_trigrams (service_id, trigrams)
SELECT service_id, name_trigrams(lower(heartbeat_name) || E'\n' || lower(service_name)) FROM services;

CREATE INDEX service_name_trigrams_idx ON service_name_trigrams USING gin (trigrams);
