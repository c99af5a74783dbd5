"""Config validation per notification target type: bad config is refused with
a message naming the field, never echoing a secret."""
from __future__ import annotations

import pytest

from medic.errors import InvalidArgument
from services.routing.target_config import validate_config


def refused(target_type, config) -> str:
    with pytest.raises(InvalidArgument) as info:
        validate_config(target_type, config)
    return info.value.message


def test_slack_needs_a_channel_id():
    assert validate_config("slack", {"channel_id": " C123 "}) == {"channel_id": "C123"}
    assert "config.channel_id" in refused("slack", {})
    assert "config.channel_id" in refused("slack", {"channel_id": ""})
    assert "config.channel_id" in refused("slack", {"channel_id": 42})


def test_pagerduty_needs_a_routing_key_and_the_message_does_not_echo_it():
    assert validate_config("pagerduty", {"routing_key": "k" * 32}) == {"routing_key": "k" * 32}
    assert "config.routing_key" in refused("pagerduty", {"service_key": "secret-value"})
    message = refused("pagerduty", {"routing_key": "secret-value", "extra": "x"})
    assert "config.extra" in message and "secret-value" not in message


def test_webhook_needs_an_http_or_https_url():
    assert validate_config("webhook", {"url": "https://hooks.example/x"}) == {
        "url": "https://hooks.example/x"}
    assert validate_config("webhook", {"url": "http://hooks.example"})["url"] == "http://hooks.example"
    for bad in ("ftp://hooks.example/x", "hooks.example/x", "https://", "", None):
        assert "config.url" in refused("webhook", {"url": bad})


def test_webhook_headers_must_map_strings_to_strings():
    ok = validate_config("webhook", {"url": "https://h.example", "headers": {"X-Token": "t"}})
    assert ok["headers"] == {"X-Token": "t"}
    assert "config.headers" in refused("webhook", {"url": "https://h.example", "headers": ["a"]})
    assert "config.headers.X-N" in refused("webhook", {"url": "https://h.example",
                                                       "headers": {"X-N": 5}})
    assert "config.headers" in refused("webhook", {"url": "https://h.example",
                                                   "headers": {"Bad Name": "v"}})
    assert "config.headers.X" in refused("webhook", {"url": "https://h.example",
                                                     "headers": {"X": "a\r\nInjected: 1"}})


def test_unknown_fields_are_refused_by_name():
    assert "config.chanel_id" in refused("slack", {"channel_id": "C1", "chanel_id": "C1"})
    # A misspelt required field is reported as the missing field it should be.
    assert "config.channel_id is required" in refused("slack", {"chanel_id": "C1"})


def test_unknown_type_and_non_object_config_are_refused():
    assert "type" in refused("email", {"to": "x"})
    assert "config" in refused("slack", None)
    assert "config" in refused("slack", ["C1"])
