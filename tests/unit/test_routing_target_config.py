"""Config validation per notification target type: bad config is refused with
a message naming the field, never echoing a secret."""
from __future__ import annotations

import pytest

from medic.errors import InvalidArgument
from services.routing.target_config import validate_config


def public_dns(host, port):
    return ["93.184.216.34"]


def valid(target_type, config, **kw):
    """Host names resolve to a public address here, without DNS."""
    return validate_config(target_type, config, **{"allow_private": False, "resolver": public_dns, **kw})


def refused(target_type, config, **kw) -> str:
    with pytest.raises(InvalidArgument) as info:
        valid(target_type, config, **kw)
    return info.value.message


def test_slack_needs_a_channel_id():
    assert valid("slack", {"channel_id": " C123 "}) == {"channel_id": "C123"}
    assert "config.channel_id" in refused("slack", {})
    assert "config.channel_id" in refused("slack", {"channel_id": ""})
    assert "config.channel_id" in refused("slack", {"channel_id": 42})


def test_pagerduty_needs_a_routing_key_and_the_message_does_not_echo_it():
    assert valid("pagerduty", {"routing_key": "k" * 32}) == {"routing_key": "k" * 32}
    assert "config.routing_key" in refused("pagerduty", {"service_key": "secret-value"})
    message = refused("pagerduty", {"routing_key": "secret-value", "extra": "x"})
    assert "config.extra" in message and "secret-value" not in message


def test_webhook_needs_an_http_or_https_url():
    assert valid("webhook", {"url": "https://hooks.example/x"}) == {
        "url": "https://hooks.example/x"}
    assert valid("webhook", {"url": "http://hooks.example"})["url"] == "http://hooks.example"
    for bad in ("ftp://hooks.example/x", "hooks.example/x", "https://", "", None):
        assert "config.url" in refused("webhook", {"url": bad})


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data", "http://127.0.0.1:8080/hook", "http://10.0.0.5/hook",
    "http://[::1]/hook", "http://[2002:a9fe:a9fe::1]/hook", "https://internal.example/hook?token=s3cret",
])
def test_webhook_to_a_non_public_destination_is_refused_without_echoing_the_url(url):
    def private_dns(host, port):
        return ["10.1.2.3"] if host == "internal.example" else [host]

    message = refused("webhook", {"url": url}, resolver=private_dns)
    assert message.startswith("config.url refused") and "non-public" in message
    assert "s3cret" not in message and "internal.example" not in message


def test_webhook_to_a_public_literal_ip_is_accepted_without_dns():
    # The real resolver: a literal address needs no DNS server.
    url = "https://93.184.216.34/hook"
    assert validate_config("webhook", {"url": url}, allow_private=False) == {"url": url}


def test_webhook_whose_host_does_not_resolve_is_refused():
    message = refused("webhook", {"url": "https://gone.example/hook"}, resolver=lambda host, port: [])
    assert message == "config.url refused: cannot resolve its host"


def test_allow_private_accepts_loopback_and_skips_dns():
    def no_dns(host, port):
        raise AssertionError("no DNS look-up with allow_private")

    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "http://localhost/x"):
        assert valid("webhook", {"url": url}, allow_private=True, resolver=no_dns) == {"url": url}
    assert "config.url" in refused("webhook", {"url": "ftp://127.0.0.1/"}, allow_private=True)


def test_webhook_headers_must_map_strings_to_strings():
    ok = valid("webhook", {"url": "https://h.example", "headers": {"X-Token": "t"}})
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
