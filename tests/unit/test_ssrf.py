"""The SSRF guard of webhook destinations."""
import pytest

from medic.ssrf import UnsafeDestination, UnresolvableHost, check_destination, is_public


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
    "100.100.100.200", "::1", "fe80::1", "fd00:ec2::254", "fc00::1", "::ffff:127.0.0.1",
    "100.64.0.1", "224.0.0.1",
])
def test_non_public_addresses_are_refused(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", [
    "2002:a9fe:a9fe::1",                  # 6to4 of the metadata IP
    "2002:7f00:1::1",                     # 6to4 of loopback
    "2002:a00:1::1",                      # 6to4 of 10.0.0.1
    "2001:0:5db8:d822::80ff:fffe",        # Teredo, public server, client 127.0.0.1
    "2001:0:5db8:d822::5601:5601",        # Teredo, public server, client 169.254.169.254
    "2001:0:a00:1::a247:27dd",            # Teredo, server 10.0.0.1, public client
    "64:ff9b::a9fe:a9fe",                 # NAT64 well-known prefix, metadata IP
    "64:ff9b::7f00:1",                    # NAT64 well-known prefix, loopback
    "64:ff9b::a00:1",                     # NAT64 well-known prefix, 10.0.0.1
    "64:ff9b:1::a9fe:a9fe",               # NAT64 local-use prefix (never public)
    "64:ff9b:1:5db8:d822::",              # ... even around a public IPv4
    "::a9fe:a9fe", "::7f00:1", "::5db8:d822",  # IPv4-compatible (deprecated)
])
def test_ipv4_embedded_in_ipv6_is_refused_unless_public(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", [
    "93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34",
    # What a DNS64 resolver answers for a public IPv4-only host.
    "64:ff9b::5db8:d822",
])
def test_public_addresses_pass(address):
    assert is_public(address)


def resolver_of(*addresses):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x",
                                 "http://", "http://user:pw@example.com/", "not a url"])
def test_only_plain_http_and_https_urls_are_accepted(url):
    with pytest.raises(UnsafeDestination):
        check_destination(url, allow_private=True, resolver=resolver_of("93.184.216.34"))


def test_every_resolved_address_must_be_public():
    with pytest.raises(UnsafeDestination, match="non-public"):
        check_destination("https://rebind.example/hook", allow_private=False,
                          resolver=resolver_of("93.184.216.34", "10.0.0.5"))
    check_destination("https://example.com/hook", allow_private=False,
                      resolver=resolver_of("93.184.216.34"))


def test_allow_private_skips_the_address_check_but_not_the_scheme():
    check_destination("http://127.0.0.1:9/hook", allow_private=True, resolver=resolver_of())
    with pytest.raises(UnsafeDestination):
        check_destination("ftp://127.0.0.1/", allow_private=True)


def test_loopback_by_name_is_refused():
    with pytest.raises(UnsafeDestination):
        check_destination("http://localhost:8080/hook", allow_private=False)


def test_unresolvable_host_is_its_own_error():
    with pytest.raises(UnresolvableHost):
        check_destination("https://x.invalid/", allow_private=False, resolver=resolver_of())
