-- Routing domain (owned by the routing service): teams, notification_targets,
-- alert_routes; plus services.team_id, the one column routing adds to the
-- heartbeat domain's table (the heartbeat service reads and writes it).

CREATE TABLE teams (
    team_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    -- NULL: the team has no Slack channel (never the empty string).
    slack_channel_id text CHECK (length(slack_channel_id) BETWEEN 1 AND 255),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Names are unique case-insensitively and looked up that way: services carry
-- the legacy team name as typed by their owners.
CREATE UNIQUE INDEX teams_name_key ON teams (lower(name));
CREATE INDEX teams_slack_channel_idx ON teams (slack_channel_id) WHERE slack_channel_id IS NOT NULL;

-- Deleting a team keeps its services and clears their reference: this foreign
-- key is the one place where the database keeps the team reference consistent.
ALTER TABLE services ADD COLUMN team_id bigint REFERENCES teams (team_id) ON DELETE SET NULL;
CREATE INDEX services_team_idx ON services (team_id) WHERE team_id IS NOT NULL;

CREATE TABLE notification_targets (
    target_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A service's targets go with it.
    service_id bigint NOT NULL REFERENCES services (service_id) ON DELETE CASCADE,
    type       text NOT NULL CHECK (type IN ('slack', 'pagerduty', 'webhook')),
    -- slack {channel_id}; pagerduty {routing_key}; webhook {url, headers?}
    -- (checked by the routing service, see services/routing/target_config.py).
    config     jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    -- Lower first.
    priority   integer NOT NULL DEFAULT 0,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- RouteAlert reads a service's enabled targets by priority.
CREATE INDEX notification_targets_routing_idx ON notification_targets (service_id, priority)
    WHERE enabled;
-- Listing and cascading deletes by service, disabled targets included.
CREATE INDEX notification_targets_service_idx ON notification_targets (service_id);

-- Per alert, the targets its first routed event (normally the TRIGGER) went
-- to, with their configs as they were then, so that REMINDER and RESOLVE reach
-- the same targets (same Slack channel, same PagerDuty routing key) even if the
-- service's targets change meanwhile. A row is written only after delivery
-- accepted the plan. `unrouted`: no target was found (targets is empty); a
-- later event that finds targets replaces it.
-- alert_id and service_id belong to the heartbeat domain; no foreign keys, so
-- that the route survives as a record of what was sent.
CREATE TABLE alert_routes (
    alert_id   bigint PRIMARY KEY,
    service_id bigint NOT NULL,
    event_id   text NOT NULL,
    mode       text NOT NULL CHECK (mode IN ('all', 'until_success')),
    -- [{type, target_id, config}] in delivery order.
    targets    jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'array'),
    unrouted   boolean NOT NULL,
    routed_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (unrouted = (targets = '[]'::jsonb))
);

CREATE INDEX alert_routes_service_idx ON alert_routes (service_id);
CREATE INDEX alert_routes_unrouted_idx ON alert_routes (routed_at) WHERE unrouted;
