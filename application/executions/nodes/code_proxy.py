"""The one way out for code nodes when A2N_CODE_NETWORK=on: an HTTP proxy that obeys the egress
rules, like http_request nodes.

Code keeps its network namespace of its own (nothing but loopback); jail.py relays
127.0.0.1:CODE_PROXY_PORT inside it to this proxy's unix socket and sets HTTP_PROXY and
HTTPS_PROXY for the program. The proxy takes `CONNECT host:port` (HTTPS, or any TCP) and plain
HTTP requests in absolute form (`GET http://host/path`), resolves the host once, checks its
addresses with the worker's `Egress` and connects to an address that passed (no DNS
rebinding); a refusal is answered 403 with the reason. One destination per connection: a plain
HTTP request's connection is piped to its host as it is after the first request line.

Each connection is bounded (`TunnelLimits`): closed when no byte has moved either way for
`idle_seconds` (A2N_CODE_NETWORK_IDLE_TIMEOUT; the request head must arrive within it too), when
`max_bytes` have moved both ways together (A2N_CODE_NETWORK_MAX_BYTES), and `lifetime_seconds`
after it opened whatever it does, so that no program, stopped or running, holds a connection of
the worker's for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import structlog

from application.egress import Egress, EgressRefused

log = structlog.get_logger(__name__)

CODE_PROXY_PORT = 3128
"""Where code finds the proxy inside its sandbox (see jail.py)."""
MAX_HEAD_BYTES = 16 * 1024
CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class TunnelLimits:
    """Bounds on each connection through the proxy (see the module docstring)."""

    idle_seconds: float = 60.0
    max_bytes: int = 1024**3
    lifetime_seconds: float = 3600.0
    """The longest a sandboxed program may run (A2N_CODE_TIMEOUT and a custom node version's
    timeout are at most an hour): no connection of one needs to last longer."""


@dataclass
class _Traffic:
    """What one tunnel has moved, and when it last moved anything."""

    last: float
    moved: int = 0
    over: bool = False


@contextlib.asynccontextmanager
async def code_proxy(egress: Egress, limits: TunnelLimits | None = None) -> AsyncIterator[str]:
    """Serve the proxy on a fresh unix socket while the block runs; yields its path. Tunnels
    still open when the block ends are cut then: none outlives the proxy (Python 3.11's
    `wait_closed` does not wait for them, and they would be left to a closed loop)."""
    bounds = limits or TunnelLimits()
    tunnels: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        assert this is not None
        tunnels.add(this)
        try:
            await _serve(egress, bounds, reader, writer)
        finally:
            tunnels.discard(this)

    with tempfile.TemporaryDirectory(prefix="a2n-code-proxy-") as directory:
        path = os.path.join(directory, "proxy.sock")
        server = await asyncio.start_unix_server(serve, path, limit=MAX_HEAD_BYTES)
        os.chmod(path, 0o600)  # only the worker's user (jail.py's relay runs as it) connects
        try:
            yield path
        finally:
            server.close()
            for task in list(tunnels):
                task.cancel()
            await asyncio.gather(*tunnels, return_exceptions=True)
            await server.wait_closed()


async def _serve(
    egress: Egress,
    limits: TunnelLimits,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.lifetime_seconds
    try:
        try:
            head = await asyncio.wait_for(
                reader.readuntil(b"\r\n\r\n"), min(limits.idle_seconds, limits.lifetime_seconds)
            )
        except TimeoutError:
            writer.transport.abort()
            return None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return await _answer(writer, 400, "the request head is incomplete or too large")
        target = _target(head)
        if target is None:
            return await _answer(
                writer, 400, "send CONNECT host:port, or an http:// URL in absolute form"
            )
        host, port, forwarded = target
        try:
            addresses = await egress.destinations_async(host, port)
        except EgressRefused as refused:
            return await _answer(writer, 403, refused.message)
        except httpcore.ConnectError as error:
            return await _answer(writer, 502, str(error))
        upstream = await _connect([str(a) for a in addresses], port)
        if upstream is None:
            return await _answer(writer, 502, f"could not connect to {host}:{port}")
        up_reader, up_writer = upstream
        try:
            if forwarded is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(forwarded)
            ended = await _relay((reader, writer), (up_reader, up_writer), limits, deadline)
            if ended is not None:
                log.info("code_proxy.closed", reason=ended, destination=f"{host}:{port}")
        finally:
            up_writer.close()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    limits: TunnelLimits,
    deadline: float,
) -> str | None:
    """Pipe both ways until both ends are done (None), or until a limit ends the tunnel: its
    name (`idle`, `bytes`, `lifetime`), both connections then cut at once."""
    loop = asyncio.get_running_loop()
    traffic = _Traffic(loop.time())
    pipes = {
        asyncio.ensure_future(_pipe(client[0], upstream[1], traffic, limits.max_bytes)),
        asyncio.ensure_future(_pipe(upstream[0], client[1], traffic, limits.max_bytes)),
    }
    pending, ended = set(pipes), None
    try:
        while pending:
            now = loop.time()
            wake = min(traffic.last + limits.idle_seconds, deadline)
            if now >= wake:
                ended = "lifetime" if now >= deadline else "idle"
                break
            _, pending = await asyncio.wait(
                pending, timeout=wake - now, return_when=asyncio.FIRST_COMPLETED
            )
            if traffic.over:
                ended = "bytes"
                break
    finally:
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
    if ended is not None:  # data buffered for a peer that does not read must not keep it open
        client[1].transport.abort()
        upstream[1].transport.abort()
    return ended


def _target(head: bytes) -> tuple[str, int, bytes | None] | None:
    """(host, port, the head to send on: None for CONNECT) of a request head, or None."""
    line, _, rest = head.partition(b"\r\n")
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        valid = host and port.isdigit() and 0 < int(port) < 65536
        return (host, int(port), None) if valid else None
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        return None
    try:
        number = url.port or 80
    except ValueError:
        return None
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return url.hostname, number, f"{method} {path} {version}\r\n".encode("latin-1") + rest


async def _connect(
    addresses: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    for address in addresses:  # the next address when one does not answer
        try:
            return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            continue
    return None


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, traffic: _Traffic, most: int
) -> None:
    loop = asyncio.get_running_loop()
    try:
        while chunk := await reader.read(_CHUNK):
            if traffic.moved + len(chunk) > most:
                traffic.over = True
                return
            traffic.moved += len(chunk)
            traffic.last = loop.time()
            writer.write(chunk)
            await writer.drain()
            traffic.last = loop.time()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = f"{message}\n".encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
