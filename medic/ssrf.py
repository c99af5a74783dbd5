"""SSRF guard for webhook URLs: http(s) only, and no loopback, private,
link-local, metadata or otherwise non-public destination unless allowed.

Checked when a webhook is created or changed and again before every send
(DNS can change in between). Every address the host resolves to must pass; an
IPv6 address carrying an IPv4 one (mapped, NAT64, 6to4, Teredo) is judged by
that IPv4 as well.
Sending to webhooks connects only to an address vetted at connect time
(``public_address``, used by the delivery HTTP transport), so a name that
answers differently between the check and the connection (DNS rebinding)
cannot steer a request to an internal address.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

# Cloud metadata endpoints that are not covered by the link-local / private ranges.
METADATA_ADDRESSES = {ipaddress.ip_address("100.100.100.200"),  # Alibaba
                      ipaddress.ip_address("fd00:ec2::254")}     # AWS IPv6

# NAT64 well-known prefix (RFC 6052): the last 32 bits are the IPv4 address the
# translator connects to, so the address is judged by that IPv4 alone. (A DNS64
# resolver answers such addresses for public IPv4-only hosts: those must pass.)
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
# Never a public destination, whatever Python's ipaddress version says of them:
NEVER_PUBLIC = (ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215); the
                                                         # IPv4 may sit at any offset in it
                ipaddress.ip_network("::/96"))           # IPv4-compatible (deprecated, RFC 4291)

Resolver = Callable[[str, int], list[str]]


class UnsafeDestination(ValueError):
    """The URL may not be called (message safe to show to the caller)."""


class NonPublicDestination(UnsafeDestination):
    """The host is, or resolves to, a non-public address."""


class UnresolvableHost(UnsafeDestination):
    """DNS gave no answer: refused at creation, worth another try at send time."""


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve host {host!r}") from exc
    return sorted({info[4][0] for info in infos})


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public(ip)
    if any(ip in network for network in NEVER_PUBLIC):
        return False
    if ip.ipv4_mapped is not None:
        return _is_public(ip.ipv4_mapped)
    if ip in NAT64_WELL_KNOWN:
        return _is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    # 6to4 and Teredo tunnel through the IPv4 they embed (Teredo: a server and
    # the client, de-obfuscated by ipaddress): those and the IPv6 address itself
    # must all be public.
    tunnelled = [ip.sixtofour] if ip.sixtofour is not None else list(ip.teredo or ())
    return all(_is_public(v4) for v4 in tunnelled) and _is_public(ip)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip in METADATA_ADDRESSES:
        return False
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def check_url_shape(url: str) -> tuple[str, int]:
    """Scheme and host checks that need no DNS; returns (host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination("malformed URL") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeDestination("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeDestination("URL has no host")
    if parts.username or parts.password:
        raise UnsafeDestination("credentials in the URL are not allowed")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_destination(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> None:
    """Raises UnsafeDestination unless every address of the URL's host is public."""
    host, port = check_url_shape(url)
    if allow_private:
        return
    public_address(host, port, resolver)


def public_address(host: str, port: int, resolver: Resolver | None = None) -> str:
    """Resolves ``host`` once and returns an address to connect to, provided every
    address it resolves to is public; raises UnsafeDestination / UnresolvableHost."""
    addresses = (resolver or resolve)(host, port)
    if not addresses:
        raise UnresolvableHost(f"cannot resolve host {host!r}")
    for address in addresses:
        if not is_public(address):
            raise NonPublicDestination(
                f"destination {host!r} resolves to a non-public address ({address})")
    return addresses[0]
