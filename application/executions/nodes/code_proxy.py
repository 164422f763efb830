"""The one way out for code nodes when A2N_CODE_NETWORK=on: an HTTP proxy that obeys the egress
rules, like http_request nodes.

Code keeps its network namespace of its own (nothing but loopback); jail.py relays
127.0.0.1:CODE_PROXY_PORT inside it to this proxy's unix socket and sets HTTP_PROXY and
HTTPS_PROXY for the program. The proxy takes `CONNECT host:port` (HTTPS, or any TCP) and plain
HTTP requests in absolute form (`GET http://host/path`), resolves the host once, checks its
addresses with the worker's `Egress` and connects to an address that passed (no DNS
rebinding); a refusal is answered 403 with the reason. One destination per connection: a plain
HTTP request's connection is piped to its host as it is after the first request line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
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


@contextlib.asynccontextmanager
async def code_proxy(egress: Egress) -> AsyncIterator[str]:
    """Serve the proxy on a fresh unix socket while the block runs; yields its path."""
    with tempfile.TemporaryDirectory(prefix="a2n-code-proxy-") as directory:
        path = os.path.join(directory, "proxy.sock")
        server = await asyncio.start_unix_server(
            lambda r, w: _serve(egress, r, w), path, limit=MAX_HEAD_BYTES
        )
        os.chmod(path, 0o600)  # only the worker's user (jail.py's relay runs as it) connects
        try:
            yield path
        finally:
            server.close()
            await server.wait_closed()


async def _serve(
    egress: Egress, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
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
        if forwarded is None:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(forwarded)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


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


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
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
