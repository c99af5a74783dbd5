"""What each notification target type needs in its ``config``.

- slack: ``channel_id`` (non-empty string);
- pagerduty: ``routing_key`` (non-empty string, the Events API v2 integration key);
- webhook: ``url`` and optional ``headers``, checked by the rule every webhook
  destination follows (``medic.webhooks``, shared with delivery's subscriptions).

Unknown fields are refused too, so that a typo (``chanel_id``) is caught when
the target is created instead of when an alert is due. Errors name the field
but never echo its value (routing keys and header values are secrets).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medic import ssrf, webhooks
from medic.errors import InvalidArgument
from services.routing.selection import PAGERDUTY, SLACK, TARGET_TYPES, WEBHOOK

MAX_VALUE_LENGTH = 2048

REQUIRED = {SLACK: ("channel_id",), PAGERDUTY: ("routing_key",), WEBHOOK: ("url",)}
OPTIONAL = {SLACK: (), PAGERDUTY: (), WEBHOOK: ("headers",)}


def _string(config: Mapping[str, Any], name: str) -> str:
    value = config.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"config.{name} is required and must be a non-empty string")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidArgument(f"config.{name} must be at most {MAX_VALUE_LENGTH} characters")
    return value.strip()


def validate_config(target_type: str, config: Mapping[str, Any] | None, *, allow_private: bool,
                    resolver: ssrf.Resolver | None = None) -> dict[str, Any]:
    """The normalized config of a target of ``target_type``; InvalidArgument naming
    the field when it is missing or malformed, or when a webhook's URL is not a
    public destination (unless ``allow_private``, MEDIC_WEBHOOK_ALLOW_PRIVATE)."""
    if target_type not in TARGET_TYPES:
        raise InvalidArgument(f"type must be one of {', '.join(TARGET_TYPES)}")
    if config is None or not isinstance(config, Mapping):
        raise InvalidArgument("config must be an object")
    normalized = _known_fields(target_type, config, allow_private, resolver)
    allowed = REQUIRED[target_type] + OPTIONAL[target_type]
    for name in config:
        if name not in allowed:
            raise InvalidArgument(
                f"config.{name} is not a field of a {target_type} target "
                f"(fields: {', '.join(allowed)})")
    return normalized


def _known_fields(target_type: str, config: Mapping[str, Any], allow_private: bool,
                  resolver: ssrf.Resolver | None) -> dict[str, Any]:
    # Required fields are checked first: "config.routing_key is required" helps
    # more than "config.service_key is unknown" (the original's name for it).
    if target_type == SLACK:
        return {"channel_id": _string(config, "channel_id")}
    if target_type == PAGERDUTY:
        return {"routing_key": _string(config, "routing_key")}
    normalized: dict[str, Any] = {"url": webhooks.check_url(
        config.get("url"), allow_private=allow_private, resolver=resolver, field="config.url")}
    headers = webhooks.check_headers(config.get("headers"), field="config.headers")
    if headers:
        normalized["headers"] = headers
    return normalized
