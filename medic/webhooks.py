"""What a webhook destination may be: its URL and the headers sent with it.

One rule for every place a webhook is saved: routing's notification targets of
type webhook (``config.url``, ``config.headers``) and delivery's webhook
subscriptions (``url``, ``headers``). Both refuse a bad destination when it is
saved, so that it is not found out when an alert is due; delivery checks the
URL again before each send (``medic.ssrf``: DNS may have changed).

Errors name the field but never echo the URL or a header value: either may
hold a secret (a token in the query, an Authorization header).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from medic import ssrf
from medic.errors import InvalidArgument

MAX_URL_LENGTH = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE_LENGTH = 4096
# A header name is an HTTP token (RFC 9110, section 5.1).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
# Headers Medic sets itself on every webhook request; a destination's headers
# cannot replace them (the signature would no longer be Medic's).
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "webhook-id",
                              "webhook-timestamp", "webhook-signature"})


def check_url(url: Any, *, allow_private: bool, resolver: ssrf.Resolver | None = None,
              field: str = "url") -> str:
    """The URL, stripped, when it is an http(s) URL whose host is a public
    destination (any host with ``allow_private``, MEDIC_WEBHOOK_ALLOW_PRIVATE);
    else InvalidArgument naming ``field``."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgument(f"{field} is required and must be a non-empty string")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"{field} must be at most {MAX_URL_LENGTH} characters")
    try:
        ssrf.check_destination(url, allow_private=allow_private, resolver=resolver)
    except ssrf.UnresolvableHost:
        raise InvalidArgument(f"{field} refused: cannot resolve its host") from None
    except ssrf.NonPublicDestination:
        raise InvalidArgument(f"{field} refused: its host is or resolves to a loopback, private, "
                              "link-local, metadata or otherwise non-public address") from None
    except ssrf.UnsafeDestination as exc:
        raise InvalidArgument(f"{field} must be an http or https URL with a host ({exc})") from None
    return url


def check_headers(headers: Any, *, field: str = "headers") -> dict[str, str]:
    """The headers as a dict when each name is an HTTP token Medic does not set
    itself and each value a single-line string; else InvalidArgument naming ``field``."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgument(f"{field} must be an object of header name -> string value")
    if len(headers) > MAX_HEADERS:
        raise InvalidArgument(f"{field} may hold at most {MAX_HEADERS} headers")
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise InvalidArgument(f"{field} has an invalid header name")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidArgument(f"{field}.{name} is set by Medic and cannot be given")
        if (not isinstance(value, str) or "\r" in value or "\n" in value
                or len(value) > MAX_HEADER_VALUE_LENGTH):
            raise InvalidArgument(f"{field}.{name} must be a single-line string of at most "
                                  f"{MAX_HEADER_VALUE_LENGTH} characters")
        checked[name] = value
    return checked
