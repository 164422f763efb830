"""A TLS client connection whose writing side can be closed while its reading side goes on.

asyncio's own TLS transports cannot half-close (their `write_eof` raises), yet a program reading
its stdin to end of file needs exactly that: the Docker engine learns that stdin ended from the
client's TLS `close_notify` alert, which Docker's own client sends (Go's `tls.Conn.CloseWrite`)
while the program's output keeps coming the other way. So the TLS here runs over a plain TCP
connection through `ssl.SSLObject` and two memory buffers: `write_eof` sends `close_notify`
(`unwrap`) without waiting for the engine's, and reading goes on until the engine ends the
stream (its own `close_notify`, or it hangs up).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

_CHUNK_BYTES = 64 * 1024


class TLSStream:
    """One TLS client connection: what arrives is in `reader`; this is the writer."""

    def __init__(
        self,
        raw_reader: asyncio.StreamReader,
        raw_writer: asyncio.StreamWriter,
        tls: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self._raw_reader = raw_reader
        self._raw_writer = raw_writer
        self._tls = tls
        self._incoming = incoming
        self._outgoing = outgoing
        self.reader = asyncio.StreamReader()
        """The plain bytes the other side sent, to end of stream."""
        self._pumping = asyncio.ensure_future(self._pump())

    @classmethod
    async def open(cls, host: str, port: int, context: ssl.SSLContext) -> TLSStream:
        """Connect to `host`:`port` and complete the handshake (the certificate checked against
        `context`, for the name `host`); OSError (ssl.SSLError among them) when that fails."""
        raw_reader, raw_writer = await asyncio.open_connection(host, port)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw_writer.write(outgoing.read())
                    await raw_writer.drain()
                    received = await raw_reader.read(_CHUNK_BYTES)
                    if not received:
                        raise ConnectionResetError("hung up during the TLS handshake") from None
                    incoming.write(received)
            raw_writer.write(outgoing.read())
        except BaseException:
            raw_writer.close()
            raise
        return cls(raw_reader, raw_writer, tls, incoming, outgoing)

    def write(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    async def drain(self) -> None:
        await self._raw_writer.drain()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Send `close_notify`: the other side reads the end of what this side sends."""
        with contextlib.suppress(ssl.SSLWantReadError):  # the other side's is not awaited
            self._tls.unwrap()
        self._flush()

    def close(self) -> None:
        self._pumping.cancel()
        self._raw_writer.close()

    def _flush(self) -> None:
        if self._outgoing.pending:
            self._raw_writer.write(self._outgoing.read())

    async def _pump(self) -> None:
        """Decrypt what arrives into `reader` until the other side ends the stream; a broken
        connection or TLS error is raised to whoever reads."""
        try:
            while True:
                received = await self._raw_reader.read(_CHUNK_BYTES)
                if received:
                    self._incoming.write(received)
                else:
                    self._incoming.write_eof()
                try:
                    while chunk := self._tls.read(_CHUNK_BYTES):
                        self.reader.feed_data(chunk)
                    ended = True  # the other side's close_notify
                except ssl.SSLWantReadError:
                    ended = not received
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    ended = True  # close_notify, or a hang-up without one (the frames tell)
                if ended:
                    self.reader.feed_eof()
                    return
        except OSError as error:  # ssl.SSLError is one
            self.reader.set_exception(error)
