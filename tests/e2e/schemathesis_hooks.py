"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through
SCHEMATHESIS_HOOKS): the run must not change its own key's rate limits, which
would leave the rest of the run answered 429 (it cannot revoke it: that
operation is excluded)."""
import os

import schemathesis

OWN_KEY_ID = os.environ.get("MEDIC_FUZZ_KEY_ID", "")


@schemathesis.hook
def filter_case(context, case):
    return (case.path_parameters or {}).get("key_id") != OWN_KEY_ID
