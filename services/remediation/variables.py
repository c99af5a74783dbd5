"""``${NAME}`` substitution in step fields, and the redaction of secrets.

A step's strings (a webhook's URL, headers and body, a script's parameters)
may name variables: ``${SERVICE_NAME}``, ``${SERVICE_ID}``, ``${HEARTBEAT_NAME}``,
``${ALERT_ID}``, ``${EXECUTION_ID}``, ``${PLAYBOOK_ID}``, ``${PLAYBOOK_NAME}``
and the caller's own; ``${secrets.NAME}`` names a step secret. A name with no
value is left as written. Substitution is textual, once: a value that itself
contains ``${...}`` is not expanded again, so an alert field cannot reach a
secret.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

PATTERN = re.compile(r"\$\{(secrets\.)?([A-Za-z_][A-Za-z0-9_]*)\}")
REDACTED = "***"


def substitute(value: Any, variables: Mapping[str, Any],
               secret: Callable[[str], str | None] | None = None) -> Any:
    """``value`` (a string, or lists and mappings of them) with its variables
    replaced; secrets only when ``secret`` (name -> value) is given, else left
    as ``${secrets.NAME}``."""
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            if match.group(1):
                found = secret(match.group(2)) if secret is not None else None
            else:
                found = variables.get(match.group(2))
            return match.group(0) if found is None else str(found)
        return PATTERN.sub(replace, value)
    if isinstance(value, dict):
        return {substitute(k, variables, secret): substitute(v, variables, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables, secret) for v in value]
    return value


def secret_names(value: Any) -> set[str]:
    """The secrets a value names."""
    if isinstance(value, str):
        return {m.group(2) for m in PATTERN.finditer(value) if m.group(1)}
    if isinstance(value, dict):
        return set().union(*(secret_names(k) | secret_names(v) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(secret_names(v) for v in value)) if value else set()
    return set()


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value in it replaced by ***."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
