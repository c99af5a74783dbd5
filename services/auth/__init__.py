"""The auth domain: API keys, scopes and per-key rate-limit overrides."""
