"""HTTP clients whose connections obey the egress rules (domain/egress.py).

The check sits where a connection is opened, in httpcore's network backend: the host is
resolved once, the addresses are checked, and the socket connects to an address that passed.
A name cannot pass the check with a public address and then connect to a private one (DNS
rebinding), and every redirect a caller follows is checked when it opens its connection. The
request itself is untouched, so the Host header, TLS SNI and certificate verification use the
original name, and the pool keeps connections apart by that name.

Refusals raise `EgressRefused`, which the HTTP clients pass through unchanged; name resolution
failures become connection errors (`httpx.ConnectError`), as they were without the rules.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from ipaddress import ip_address
from typing import Any

import httpcore
import httpx

from domain.egress import EgressPolicy, IPAddress, is_localhost, literal_address

Resolver = Callable[[str, int], Sequence[str]]
"""(host, port) -> the addresses the name has, as text; raises OSError when it has none."""

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_LOCALHOST = (ip_address("127.0.0.1"), ip_address("::1"))


class EgressRefused(Exception):
    """A destination the egress rules refuse; the message says which address and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), each address once, in its order."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


@dataclass(frozen=True)
class Egress:
    """The rules for outbound requests, the resolver to look names up with and the backend
    that opens connections to checked addresses (both replaceable for tests)."""

    policy: EgressPolicy = field(default_factory=EgressPolicy)
    resolver: Resolver = system_resolver
    network: httpcore.AsyncNetworkBackend = field(default_factory=httpcore.AnyIOBackend)

    def destinations(self, host: str, port: int) -> list[IPAddress]:
        """The allowed addresses of `host`; EgressRefused when it has none."""
        return self._checked(host, _fixed(host) or self._resolved(host, port))

    async def destinations_async(self, host: str, port: int) -> list[IPAddress]:
        """`destinations` without blocking the event loop while a name is looked up."""
        addresses = _fixed(host)
        if addresses is None:
            loop = asyncio.get_running_loop()
            addresses = await loop.run_in_executor(None, partial(self._resolved, host, port))
        return self._checked(host, addresses)

    def async_transport(self, *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncBaseTransport:
        """A transport for `httpx.AsyncClient(transport=...)` (no proxies: they would make the
        connection's address the proxy's)."""
        return _GuardedAsyncTransport(self, verify)

    def transport(
        self, *, verify: ssl.SSLContext | bool = True, trust_env: bool = False
    ) -> httpx.BaseTransport:
        """A transport for `httpx.Client(transport=...)`; `trust_env` only reads certificate
        locations (SSL_CERT_FILE) from the environment, never proxies."""
        return _GuardedTransport(self, verify, trust_env)

    def _resolved(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = [ip_address(answer) for answer in self.resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise httpcore.ConnectError(f"cannot resolve {host}: {reason}") from None
        if not answers:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        return answers

    def _checked(self, host: str, addresses: Sequence[IPAddress]) -> list[IPAddress]:
        allowed = [address for address in addresses if self.policy.allows(address)]
        if not allowed:
            raise EgressRefused(self.policy.refusal(host, addresses[0]))
        return allowed


def _fixed(host: str) -> list[IPAddress] | None:
    """The addresses of a host that needs no lookup: an address, or a localhost name."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    return list(_LOCALHOST) if is_localhost(host) else None


class _AsyncGuard(httpcore.AsyncNetworkBackend):
    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        *others, last = await self._egress.destinations_async(host, port)
        connect = partial(
            self._egress.network.connect_tcp,
            port=port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        for address in others:  # the next address when one does not answer
            try:
                return await connect(str(address))
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await connect(str(last))

    async def sleep(self, seconds: float) -> None:
        await self._egress.network.sleep(seconds)


class _Guard(httpcore.NetworkBackend):
    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._network = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        *others, last = self._egress.destinations(host, port)
        connect = partial(
            self._network.connect_tcp,
            port=port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        for address in others:
            try:
                return connect(str(address))
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return connect(str(last))

    def sleep(self, seconds: float) -> None:
        self._network.sleep(seconds)


class _GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a pool whose connections open through the guard (httpx offers no
    other way to choose the network backend)."""

    def __init__(self, egress: Egress, verify: ssl.SSLContext | bool) -> None:
        context = ssl_context(verify, trust_env=False)
        super().__init__(verify=context, limits=DEFAULT_LIMITS)
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(context), network_backend=_AsyncGuard(egress)
        )


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, egress: Egress, verify: ssl.SSLContext | bool, trust_env: bool) -> None:
        context = ssl_context(verify, trust_env=trust_env)
        super().__init__(verify=context, limits=DEFAULT_LIMITS)
        self._pool = httpcore.ConnectionPool(
            **_pool_options(context), network_backend=_Guard(egress)
        )


def ssl_context(verify: ssl.SSLContext | bool, *, trust_env: bool) -> ssl.SSLContext:
    """The TLS context for `verify`: a caller's own as given, the default ones made once per
    process (and per certificate location the environment names). Loading the CA bundle takes
    10-20 ms of CPU, which every http_request node, webhook delivery and sign-in paid twice."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    locations = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    return _default_context(verify, trust_env and any(locations), locations)


@lru_cache(maxsize=8)
def _default_context(
    verify: bool, from_environment: bool, _locations: tuple[str | None, str | None]
) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify, trust_env=from_environment)


def _pool_options(context: ssl.SSLContext) -> dict[str, Any]:
    return {
        "ssl_context": context,
        "max_connections": DEFAULT_LIMITS.max_connections,
        "max_keepalive_connections": DEFAULT_LIMITS.max_keepalive_connections,
        "keepalive_expiry": DEFAULT_LIMITS.keepalive_expiry,
    }
