"""The code nodes' egress proxy bounds every connection: a tunnel where nothing moves is closed
after the idle timeout (a request head that never comes too), one that moved its bytes or lived
its lifetime is cut, and a busy one lives on past the idle timeout. Real sockets: a TCP server
on 127.0.0.1 behind the proxy's unix socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from structlog.testing import capture_logs

from application.executions.nodes.code_proxy import TunnelLimits, code_proxy
from tests.loopback import LOOPBACK_EGRESS

BOUND = 10.0
"""Seconds a test waits for what must happen well within it (no timing is asserted)."""

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def upstream(serve: Serve) -> AsyncIterator[tuple[int, asyncio.Queue[bytes]]]:
    """A TCP server on 127.0.0.1 running `serve` per connection; its port, and a queue that
    gets what each connection read after `serve` returned (b"" when the proxy closed it)."""
    closed: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(reader, writer)
            await closed.put(await asyncio.wait_for(reader.read(), BOUND))
        except (ConnectionError, TimeoutError) as error:
            await closed.put(type(error).__name__.encode())
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], closed
    finally:
        server.close()


async def tunnel(proxy: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A CONNECT tunnel through the proxy at `proxy` to 127.0.0.1:`port`, established."""
    reader, writer = await asyncio.open_unix_connection(proxy)
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the proxy sends until it closes the connection (within BOUND)."""
    return await asyncio.wait_for(reader.read(), BOUND)


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An upstream that accepts and then says nothing."""


def test_an_idle_tunnel_is_closed_at_both_ends() -> None:
    async def scenario() -> None:
        limits = TunnelLimits(idle_seconds=0.5)
        async with code_proxy(LOOPBACK_EGRESS, limits) as proxy, upstream(hold) as (port, ends):
            with capture_logs() as logs:
                reader, writer = await tunnel(proxy, port)
                assert await until_closed(reader) == b""
                assert await asyncio.wait_for(ends.get(), BOUND) == b""
            writer.close()
        assert closings(logs) == [("code_proxy.closed", "idle")]

    asyncio.run(scenario())


def test_a_tunnel_still_open_when_the_proxy_closes_is_cut_at_both_ends() -> None:
    async def scenario() -> None:
        async with upstream(hold) as (port, ends):
            async with code_proxy(LOOPBACK_EGRESS, TunnelLimits(idle_seconds=60)) as proxy:
                reader, writer = await tunnel(proxy, port)
            assert await until_closed(reader) == b""
            assert await asyncio.wait_for(ends.get(), BOUND) == b""
            writer.close()

    asyncio.run(scenario())


def test_a_request_head_that_never_comes_is_not_waited_for() -> None:
    async def scenario() -> None:
        async with code_proxy(LOOPBACK_EGRESS, TunnelLimits(idle_seconds=0.5)) as proxy:
            reader, writer = await asyncio.open_unix_connection(proxy)
            writer.write(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n")  # never finished
            assert await until_closed(reader) == b""
            writer.close()

    asyncio.run(scenario())


def test_a_tunnel_where_bytes_keep_moving_outlives_the_idle_timeout() -> None:
    async def tick(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(8):  # 1.6 s in all, never 0.5 s without a byte
            writer.write(f"{n};".encode())
            await writer.drain()
            await asyncio.sleep(0.2)
        writer.write_eof()

    async def scenario() -> None:
        limits = TunnelLimits(idle_seconds=0.5)
        async with code_proxy(LOOPBACK_EGRESS, limits) as proxy, upstream(tick) as (port, _):
            reader, writer = await tunnel(proxy, port)
            assert await until_closed(reader) == b"".join(f"{n};".encode() for n in range(8))
            writer.close()

    asyncio.run(scenario())


def test_a_tunnel_is_cut_when_it_has_moved_its_bytes() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(64):
                writer.write(b"x" * 64 * 1024)
                await writer.drain()
        except ConnectionError:
            return

    async def scenario() -> None:
        limits = TunnelLimits(max_bytes=200_000)
        async with code_proxy(LOOPBACK_EGRESS, limits) as proxy, upstream(flood) as (port, _):
            with capture_logs() as logs:
                reader, writer = await tunnel(proxy, port)
                received = await until_closed(reader)
            writer.close()
        assert 0 < len(received) <= 200_000
        assert closings(logs) == [("code_proxy.closed", "bytes")]

    asyncio.run(scenario())


def test_a_tunnel_ends_at_its_lifetime_however_busy() -> None:
    async def chatter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(b".")
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            return

    async def scenario() -> None:
        limits = TunnelLimits(idle_seconds=5, lifetime_seconds=1)
        async with code_proxy(LOOPBACK_EGRESS, limits) as proxy, upstream(chatter) as (port, _):
            with capture_logs() as logs:
                reader, writer = await tunnel(proxy, port)
                assert (await until_closed(reader)).startswith(b".")
            writer.close()
        assert closings(logs) == [("code_proxy.closed", "lifetime")]

    asyncio.run(scenario())


def closings(logs: list[MutableMapping[str, Any]]) -> list[tuple[str, str]]:
    """The proxy's closings among the captured log events (a test worker's other threads log
    too while the capture is on)."""
    return [(e["event"], e["reason"]) for e in logs if e["event"] == "code_proxy.closed"]
