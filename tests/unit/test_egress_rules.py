"""The egress rules themselves: which addresses are not public, how hosts spelt as addresses
are read, and what A2N_EGRESS_ALLOW accepts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from application.settings import Settings, SettingsError
from domain.egress import EgressPolicy, forbidden, is_localhost, literal_address


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.200.1.1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.0.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("100.127.255.255", "a carrier-grade NAT address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),  # noqa: S104 - classified, never bound
        ("0.1.2.3", "a 'this network' address"),
        ("255.255.255.255", "the broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.0.8", "a reserved address"),
        ("192.88.99.1", "a reserved address"),
        ("192.0.2.1", "a documentation address"),
        ("198.51.100.1", "a documentation address"),
        ("203.0.113.1", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("198.19.255.255", "a benchmarking address"),
        ("::1", "a loopback address"),
        ("::", "the unspecified address"),
        ("fc00::1", "a unique local (private) address"),
        ("fdff:ffff::1", "a unique local (private) address"),
        ("fe80::1", "a link-local address"),
        ("febf::1", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("ff02::1", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("3fff::1", "a documentation address"),
        ("2001::1", "a reserved address"),  # Teredo
        ("64:ff9b:1::1", "a local-use NAT64 address"),
        ("100::1", "a reserved address"),  # discard-only
        ("4000::1", "a reserved address"),  # outside global unicast
        ("::ffff:127.0.0.1", "an IPv4-mapped address of 127.0.0.1, a loopback address"),
        (
            "::ffff:169.254.169.254",
            "an IPv4-mapped address of 169.254.169.254, a link-local address",
        ),
        ("::ffff:0:10.0.0.1", "an IPv4-translated address of 10.0.0.1, a private address"),
        ("::127.0.0.1", "an IPv4-compatible address of 127.0.0.1, a loopback address"),
        ("::8.8.8.8", "a reserved address"),  # IPv4-compatible addresses are deprecated
        ("64:ff9b::10.0.0.1", "a NAT64 address of 10.0.0.1, a private address"),
        ("2002:7f00:1::1", "a 6to4 address of 127.0.0.1, a loopback address"),
        ("2002:a9fe:a9fe::", "a 6to4 address of 169.254.169.254, a link-local address"),
    ],
)
def test_non_public_addresses_are_named(address: str, what: str) -> None:
    assert forbidden(ip_address(address)) == what


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",  # just below carrier-grade NAT
        "100.128.0.0",  # just above
        "172.15.255.255",
        "172.32.0.0",
        "169.253.255.255",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::1",  # just past the IETF block
        "::ffff:8.8.8.8",  # the IPv4 address on a dual-stack socket
        "64:ff9b::8.8.8.8",  # NAT64 to a public address
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden(ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("0x7f.0x1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0", "0.0.0.0"),  # noqa: S104 - read, never bound
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
    ],
)
def test_every_spelling_of_an_address_is_read_as_that_address(host: str, address: str) -> None:
    assert literal_address(host) == ip_address(address)


def test_an_ipv6_zone_is_kept_but_does_not_change_the_verdict() -> None:
    address = literal_address("fe80::1%25eth0")
    assert isinstance(address, IPv6Address)
    assert address.scope_id == "eth0"
    assert forbidden(address) == "a link-local address"


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.256.1.1",
        "4294967296",
        "08.1",
        "1..2",
    ],
)
def test_names_and_impossible_numbers_are_not_addresses(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "db.localhost"])
def test_localhost_names_are_loopback_by_definition(host: str) -> None:
    assert is_localhost(host)


@pytest.mark.parametrize("host", ["localhost.example.com", "notlocalhost", "example.com"])
def test_other_names_are_not_localhost(host: str) -> None:
    assert not is_localhost(host)


def test_the_allow_list_opens_exactly_its_networks() -> None:
    policy = EgressPolicy.parse("127.0.0.0/8, 10.1.0.0/16,fd00::/8,[::1]")
    assert policy.allows(IPv4Address("127.9.9.9"))
    assert policy.allows(IPv4Address("10.1.200.3"))
    assert not policy.allows(IPv4Address("10.2.0.1"))
    assert policy.allows(IPv6Address("fd00::5"))
    assert policy.allows(IPv6Address("::1"))
    assert policy.allows(IPv6Address("::ffff:127.0.0.1"))  # 127.0.0.1 on the wire
    assert not policy.allows(IPv4Address("169.254.169.254"))
    assert not policy.allows(IPv6Address("fe80::1"))
    assert policy.allows(IPv4Address("8.8.8.8"))  # public addresses need no entry


def test_nothing_is_allowed_by_default() -> None:
    policy = Settings.from_env({}).egress_allow
    assert policy == EgressPolicy()
    assert not policy.allows(IPv4Address("127.0.0.1"))
    assert policy.refusal("127.0.0.1", IPv4Address("127.0.0.1")) == (
        "refused: 127.0.0.1 is a loopback address (set A2N_EGRESS_ALLOW to allow it)"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "127.0.0.1/8",
            "A2N_EGRESS_ALLOW: '127.0.0.1/8' has host bits set; the network is 127.0.0.0/8",
        ),
        (
            "10.0.0.0/8,intranet",
            "A2N_EGRESS_ALLOW: 'intranet' is not an address or a network such as 127.0.0.0/8 "
            "or fd00::/8",
        ),
        (
            "10.0.0.0/33",
            "A2N_EGRESS_ALLOW: '10.0.0.0/33' is not an address or a network such as "
            "127.0.0.0/8 or fd00::/8",
        ),
    ],
)
def test_a_malformed_allow_list_stops_start_up_naming_the_entry(raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"A2N_EGRESS_ALLOW": raw})
    assert str(caught.value) == message


def test_the_allow_list_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"A2N_EGRESS_ALLOW": "10.0.0.0/8 , 192.168.1.20"})
    assert [str(network) for network in settings.egress_allow.allow] == [
        "10.0.0.0/8",
        "192.168.1.20/32",
    ]
