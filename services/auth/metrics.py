"""Metrics of the auth domain (the enforcement metrics every process shares are in
``medic.metrics``)."""
from prometheus_client import Counter

ARGON2_VERIFICATIONS = Counter(
    "medic_auth_argon2_verifications_total",
    "argon2 hash verifications (one per key per process while its hash is remembered)")
API_KEYS_CREATED = Counter("medic_api_keys_created_total", "API keys created")
API_KEYS_REVOKED = Counter("medic_api_keys_revoked_total", "API keys revoked")
