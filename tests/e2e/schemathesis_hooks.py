"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through
SCHEMATHESIS_HOOKS).

- The run must not change its own key's rate limits, which would leave the rest
  of the run answered 429 (it cannot revoke it: that operation is excluded).
- ``POST /service/{heartbeat_name}`` answers an unknown name with 200 "was not
  located" whatever the body, as the original did (it looked the name up
  first), and a generated name is all but always unknown: such an update would
  test nothing but that answer. Every case whose name is not itself the invalid
  part goes to a service registered for the run, so its body is what is checked
  (valid ones updated, invalid ones refused); the run must not delete that
  service.
- The job-signal routes ignore a body that is not JSON at all, sent as
  application/json or not (issue 17: as the original did), which an OpenAPI
  document cannot state: "invalid data accepted" for such a body, and only
  that, is not a failure there. Their other invalid bodies (a run_id too long
  or holding NUL) are still checked.
"""
import json
import os
import re

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

OWN_KEY_ID = os.environ.get("MEDIC_FUZZ_KEY_ID", "")
TARGET_NAME = os.environ.get("MEDIC_FUZZ_SERVICE_NAME", "")
TARGET_ID = os.environ.get("MEDIC_FUZZ_SERVICE_ID", "")
UPDATE = "POST /service/{heartbeat_name}"
JOB_SIGNAL = re.compile(r"POST /v2/heartbeat/\{service_id\}/(start|complete|fail)")


@schemathesis.hook
def filter_case(context, case):
    path = case.path_parameters or {}
    if path.get("key_id") == OWN_KEY_ID:
        return False
    # Path values come as integers or, in the coverage phase, as the strings sent.
    return not (case.operation.label == "DELETE /v2/services/{service_id}"
                and str(path.get("service_id")) == TARGET_ID)


@schemathesis.hook
def map_case(context, case):
    if case.operation.label != UPDATE or not TARGET_NAME:
        return case
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta is not None else None
    if path is None or path.mode != GenerationMode.NEGATIVE:
        case.path_parameters = {**(case.path_parameters or {}), "heartbeat_name": TARGET_NAME}
    return case


def _not_json(body) -> bool:
    if not isinstance(body, (bytes, bytearray)):
        return False
    try:
        json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return True
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    return not (isinstance(failure, AcceptedNegativeData) and JOB_SIGNAL.fullmatch(case.operation.label)
                and _not_json(case.body))
