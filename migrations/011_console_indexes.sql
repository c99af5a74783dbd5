-- Indexes for the console's service table (SearchServices): its first page in
-- each order reads a page of an index instead of sorting every service.
-- (Sort by name uses services_heartbeat_name_key, on lower(heartbeat_name).)
CREATE INDEX services_deadline_order_idx ON services (deadline_at, service_id);
CREATE INDEX services_last_heartbeat_order_idx ON services (last_heartbeat_at DESC NULLS LAST, service_id);
