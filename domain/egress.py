"""Which network destinations a request a user steers may reach.

A workflow chooses the URLs its http_request nodes fetch, so without a rule it could read the
cloud metadata service, the host's own ports or the private network behind it. Every address
that is not a public unicast address is refused unless the operator allows its network
(A2N_EGRESS_ALLOW). The rule is applied to the address a connection really goes to, after the
name is resolved, so it does not matter how a host is spelt; `literal_address` only saves a
lookup for hosts that are addresses in some spelling, and names which are loopback by
definition (RFC 6761 `localhost`) never reach a resolver that might say otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_network,
)
from urllib.parse import unquote

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

ALLOW_VARIABLE = "A2N_EGRESS_ALLOW"

LOOPBACK = "a loopback address"
PRIVATE = "a private address"
LINK_LOCAL = "a link-local address"
MULTICAST = "a multicast address"
RESERVED = "a reserved address"
DOCUMENTATION = "a documentation address"

_V4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), what)
    for network, what in (
        ("0.0.0.0/32", "the unspecified address"),
        ("0.0.0.0/8", "a 'this network' address"),
        ("127.0.0.0/8", LOOPBACK),
        ("10.0.0.0/8", PRIVATE),
        ("172.16.0.0/12", PRIVATE),
        ("192.168.0.0/16", PRIVATE),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("169.254.0.0/16", LINK_LOCAL),
        ("192.0.0.0/24", RESERVED),  # IETF protocol assignments
        ("192.0.2.0/24", DOCUMENTATION),
        ("198.51.100.0/24", DOCUMENTATION),
        ("203.0.113.0/24", DOCUMENTATION),
        ("198.18.0.0/15", "a benchmarking address"),
        ("192.88.99.0/24", RESERVED),  # the former 6to4 relay anycast
        ("224.0.0.0/4", MULTICAST),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", RESERVED),
    )
)

_V6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), what)
    for network, what in (
        ("::1/128", LOOPBACK),
        ("::/128", "the unspecified address"),
        ("fe80::/10", LINK_LOCAL),
        ("fec0::/10", "a site-local address"),
        ("fc00::/7", "a unique local (private) address"),
        ("ff00::/8", MULTICAST),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("2001:db8::/32", DOCUMENTATION),
        ("3fff::/20", DOCUMENTATION),
        ("2001::/23", RESERVED),  # IETF protocol assignments: Teredo, ORCHID, benchmarking
    )
)

_GLOBAL_UNICAST = IPv6Network("2000::/3")
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")

_EMBEDDING: tuple[tuple[IPv6Network, str], ...] = (
    (_IPV4_MAPPED, "an IPv4-mapped"),
    (_IPV4_TRANSLATED, "an IPv4-translated"),
    (_IPV4_COMPATIBLE, "an IPv4-compatible"),
    (_NAT64, "a NAT64"),
    (_SIX_TO_FOUR, "a 6to4"),
)

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


def forbidden(address: IPAddress) -> str | None:
    """What kind of non-public address `address` is ('a loopback address'), or None for a
    public unicast address. An IPv6 address that carries an IPv4 address (mapped, compatible,
    translated, NAT64, 6to4) is judged by that IPv4 address too."""
    if isinstance(address, IPv4Address):
        return next((what for network, what in _V4_RANGES if address in network), None)
    plain = IPv6Address(int(address))  # without a zone (scope id)
    what = next((what for network, what in _V6_RANGES if plain in network), None)
    if what is not None:
        return what
    embedded = _embedded(plain)
    if embedded is not None:
        name, v4 = embedded
        inner = forbidden(v4)
        if inner is not None:
            return f"{name} address of {v4}, {inner}"
        if plain in _IPV4_MAPPED or plain in _NAT64 or plain in _SIX_TO_FOUR:
            return None  # the IPv4 address itself, or a public one reached through a gateway
    return None if plain in _GLOBAL_UNICAST else RESERVED


def _embedded(address: IPv6Address) -> tuple[str, IPv4Address] | None:
    for network, name in _EMBEDDING:
        if address in network:
            bits = int(address)
            if network is _SIX_TO_FOUR:
                return name, IPv4Address((bits >> 80) & 0xFFFFFFFF)
            return name, IPv4Address(bits & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address `host` spells, in any form a resolver accepts as an address rather than a
    name: dotted quad, `inet_aton` forms (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`),
    IPv6 with or without brackets and zone, a trailing dot. None for a name."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return IPv6Address(unquote(host))
        except ValueError:
            return None
    return _inet_aton(host.removesuffix("."))


def _inet_aton(host: str) -> IPv4Address | None:
    """IPv4 the way inet_aton(3) reads it: one to four parts, each decimal, octal (leading 0)
    or hex (0x); the last part fills the bytes the others leave."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if _HEX.fullmatch(part):
            values.append(int(part[2:], 16))
        elif _OCTAL.fullmatch(part):
            values.append(int(part, 8))
        elif _DECIMAL.fullmatch(part):
            values.append(int(part))
        else:
            return None
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (4 - len(leading)):
        return None
    number = 0
    for value in leading:
        number = number * 256 + value
    return IPv4Address(number * 256 ** (4 - len(leading)) + last)


def is_localhost(host: str) -> bool:
    """Names that are the loopback interface by definition (RFC 6761 section 6.3)."""
    name = host.strip().lower().removesuffix(".")
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class EgressPolicy:
    """Refuses every non-public address except in the networks the operator allows."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> EgressPolicy:
        """A2N_EGRESS_ALLOW: comma-separated networks (`127.0.0.0/8,10.1.2.3,fd00::/8`)."""
        return cls(tuple(_network(entry.strip()) for entry in raw.split(",") if entry.strip()))

    def allows(self, address: IPAddress) -> bool:
        """Whether `address` is public or in an allowed network (an IPv4-mapped address also
        by its IPv4 address: it is that address on the wire)."""
        if forbidden(address) is None:
            return True
        candidates: list[IPAddress] = [address]
        if isinstance(address, IPv6Address):
            candidates[0] = IPv6Address(int(address))
            if address.ipv4_mapped is not None:
                candidates.append(address.ipv4_mapped)
        return any(
            candidate in network
            for candidate in candidates
            for network in self.allow
            if candidate.version == network.version
        )

    def refusal(self, host: str, address: IPAddress) -> str:
        """Why a connection to `host` at `address`, which this policy does not allow, is
        refused: the message the user sees."""
        spelt = literal_address(host)
        if spelt is None:
            subject = f"{host} resolves to {address},"
        elif isinstance(spelt, IPv6Address) or host == str(address):
            subject = f"{host.strip('[]')} is"
        else:
            subject = f"{host} is {address},"  # 2130706433 is 127.0.0.1, ...
        return f"refused: {subject} {forbidden(address)} (set {ALLOW_VARIABLE} to allow it)"


def _network(entry: str) -> IPNetwork:
    try:
        return ip_network(entry.strip("[]"))
    except ValueError:
        pass
    try:
        loose = ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        raise ValueError(
            f"{entry!r} is not an address or a network such as 127.0.0.0/8 or fd00::/8"
        ) from None
    raise ValueError(f"{entry!r} has host bits set; the network is {loose}")
