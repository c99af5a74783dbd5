"""The one rule for webhook destinations (``medic.webhooks``), which routing's
webhook targets and delivery's subscriptions both follow."""
from __future__ import annotations

import pytest

from medic import webhooks
from medic.errors import InvalidArgument


def refused(call, *args, **kw) -> str:
    with pytest.raises(InvalidArgument) as info:
        call(*args, **kw)
    return info.value.message


@pytest.mark.parametrize("name", ["Bad Name", "X:Y", "", "Ünicode", "x" * 129, "a\r\nb"])
def test_a_header_name_must_be_an_http_token(name):
    assert refused(webhooks.check_headers, {name: "v"}) == "headers has an invalid header name"


@pytest.mark.parametrize("name", ["Content-Type", "host", "Webhook-Signature", "webhook-id"])
def test_headers_medic_sets_itself_cannot_be_given(name):
    message = refused(webhooks.check_headers, {name: "forged"}, field="config.headers")
    assert message.startswith(f"config.headers.{name}") and "forged" not in message


def test_header_values_are_single_line_strings_and_never_echoed():
    assert webhooks.check_headers({"X-Token": "s3cret", "Authorization": "Bearer t"}) == {
        "X-Token": "s3cret", "Authorization": "Bearer t"}
    for value in ("a\r\nInjected: 1", 5, "x" * 4097):
        message = refused(webhooks.check_headers, {"X-Token": value})
        assert message.startswith("headers.X-Token") and "Injected" not in message


def test_too_many_headers_are_refused():
    assert "at most 50" in refused(webhooks.check_headers, {f"X-{n}": "v" for n in range(51)})


def test_a_url_is_stripped_and_its_refusal_never_names_the_host():
    def private(host, port):
        return ["10.0.0.8"]

    assert webhooks.check_url(" https://93.184.216.34/h ", allow_private=False) == "https://93.184.216.34/h"
    message = refused(webhooks.check_url, "https://internal.example/h?token=s3cret",
                      allow_private=False, resolver=private)
    assert message.startswith("url refused") and "internal.example" not in message
    assert "s3cret" not in message
    assert refused(webhooks.check_url, "x" * 2049, allow_private=True) == \
        "url must be at most 2048 characters"
