"""Read-your-writes: wait until the projectors a query reads have applied a given position.

Projectors announce each committed batch on the `a2n_projection` channel. One LISTEN connection
per API process keeps the latest positions in memory, so a query whose position is already
applied pays a dictionary lookup; otherwise it waits for the announcement (or, while the LISTEN
connection is down, polls the tracking table) until a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger("a2n.positions")

CHANNEL = "a2n_projection"
POLL_SECONDS = 0.025

Reader = tuple[str, str]
"""(projector, application): one projector's progress through one context's event log."""


class ProjectionPositions:
    """The latest known position of every (projector, application)."""

    def __init__(self, database_url: str, pool: AsyncConnectionPool) -> None:
        self.database_url = database_url
        self.pool = pool
        self.positions: dict[Reader, int] = {}
        self.listening = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._listen(), name="a2n-positions-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, readers: Iterable[Reader], position: int, timeout: float) -> bool:
        """Whether every reader reached `position` within `timeout` seconds."""
        readers = tuple(readers)
        if self._reached(readers, position):
            return True
        await self.refresh()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._reached(readers, position):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            if self.listening:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
            else:
                await asyncio.sleep(min(POLL_SECONDS, remaining))
                await self.refresh()
        return True

    async def refresh(self) -> None:
        """Read every tracked position from the database."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT projector, application, position FROM projection_tracking"
            )
            for projector, application, position in await cur.fetchall():
                self._advance((projector, application), int(position))

    def _reached(self, readers: tuple[Reader, ...], position: int) -> bool:
        return all(self.positions.get(reader, 0) >= position for reader in readers)

    def _advance(self, reader: Reader, position: int) -> None:
        if position > self.positions.get(reader, 0):
            self.positions[reader] = position
        # Wake every waiter: each re-checks its own readers.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, application_name="a2n-positions"
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    delay = 0.1
                    await self.refresh()
                    async for note in conn.notifies():
                        projector, application, position = note.payload.rsplit(":", 2)
                        self._advance((projector, application), int(position))
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as exc:
                log.warning("positions_listener_lost", error=f"{type(exc).__name__}: {exc}")
            self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
