-- Auth domain (owned by the auth service): API keys.

CREATE TABLE api_keys (
    -- The lookup half of `mdk_<key_id>_<secret>`: 12 characters [A-Za-z0-9].
    key_id                text PRIMARY KEY CHECK (key_id ~ '^[A-Za-z0-9]{12}$'),
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    -- argon2id hash (PHC string) of the whole key; the plaintext is never stored.
    key_hash              text NOT NULL,
    scopes                text[] NOT NULL
                          CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'write', 'admin']),
    -- Per-key rate-limit overrides (requests per minute); NULL: the default applies.
    heartbeat_per_minute  integer CHECK (heartbeat_per_minute >= 1),
    management_per_minute integer CHECK (management_per_minute >= 1),
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz,
    revoked_at            timestamptz,
    -- Updated at most once a minute per key.
    last_used_at          timestamptz
);
