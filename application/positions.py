"""Read-your-writes: wait until the projectors a query reads have applied a given position.

Projectors announce each committed batch on the `a2n_projection` channel. The process's one
LISTEN connection (application/listener.py) keeps the latest positions in memory, so a query
whose position is already applied pays a dictionary lookup; otherwise it waits for the
announcement (or, while the LISTEN connection is down, polls the tracking table) until a deadline.
A query that must wait says so on `HURRY_CHANNEL`, for projectors that let the saves of logs
they follow in the background gather longer before applying them (projections/supervisor.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable

import structlog
from psycopg_pool import AsyncConnectionPool

from application.contexts import LOGS
from application.errors import InvalidParameter
from application.listener import Listener

log = structlog.get_logger("a2n.positions")

CHANNEL = "a2n_projection"
HURRY_CHANNEL = "a2n_projection_hurry"
"""A read waits for the projector this NOTIFY names."""
POLL_SECONDS = 0.025

Reader = tuple[str, str]
"""(projector, application): one projector's progress through one context's event log."""


def log_positions(raw: str, *, main_log: str | None, invalid: InvalidParameter) -> dict[str, int]:
    """Positions per event log from `workflows:12, identity:7` (a plain number is a position in
    `main_log`, when there is one); anything else raises `invalid`."""
    positions: dict[str, int] = {}
    for item in raw.split(",", len(LOGS)):
        log, named, number = item.strip().rpartition(":")
        if not named:
            if main_log is None:
                raise invalid
            log = main_log
        if log not in LOGS or log in positions or not number.isdigit() or len(number) > 18:
            raise invalid
        positions[log] = int(number)
    return positions


class ProjectionPositions:
    """The latest known position of every (projector, application)."""

    def __init__(self, pool: AsyncConnectionPool, listener: Listener) -> None:
        self.pool = pool
        self.listener = listener
        self.positions: dict[Reader, int] = {}
        self.notices: dict[Reader, int] = {}
        """How many announcements (or refreshes) each reader had: a change means its tables
        may have changed (a rebuild announces without moving on), for the read cache."""
        self.epoch = 0
        """Moves when the LISTEN connection came back: announcements may have been missed."""
        self._subscribed = False
        """Whether the channel is LISTENed to: a listener already connected LISTENs to a new
        subscription only at its next turn, and announcements before that are lost."""
        self._changed = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._subscribed and self.listener.listening

    async def start(self) -> None:
        """Read the positions, then follow the announcements (the listener calls back from its
        own thread, so each notice is handed over to this event loop)."""
        loop = asyncio.get_running_loop()
        await self.refresh()

        def notified(payload: str) -> None:
            projector, application, position = payload.rsplit(":", 2)
            loop.call_soon_threadsafe(self._advance, (projector, application), int(position))

        def reconnected() -> None:
            loop.call_soon_threadsafe(self._missed_notices)
            asyncio.run_coroutine_threadsafe(self._refresh_quietly(), loop)

        self.listener.subscribe(CHANNEL, notified, reconnected=reconnected)

    async def wait_for(self, readers: Iterable[Reader], position: int, timeout: float) -> bool:
        """Whether every reader reached `position` within `timeout` seconds."""
        readers = tuple(readers)
        if self._reached(readers, position):
            return True
        await self.refresh(hurry={projector for projector, _ in readers})
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

    async def refresh(self, hurry: Collection[str] = ()) -> None:
        """Read every tracked position from the database; in the same round trip, ask the
        projectors `hurry` to apply what they hold back now."""
        async with self.pool.connection() as conn, conn.pipeline():
            if hurry:
                await conn.execute(
                    "SELECT pg_notify(%s, name) FROM unnest(%s::text[]) name",
                    (HURRY_CHANNEL, sorted(hurry)),
                )
            cur = await conn.execute(
                "SELECT projector, application, position FROM projection_tracking"
            )
            for projector, application, position in await cur.fetchall():
                self._advance((projector, application), int(position))

    def tag(self, readers: Iterable[Reader]) -> tuple[int, ...] | None:
        """Changes whenever a table one of `readers` writes may have changed (any announcement,
        a reconnection of the LISTEN connection); None while nothing can be told (not listening).
        Moves before any waiter for those readers' positions wakes (both follow `_advance`)."""
        if not self.listening:
            return None
        notices = self.notices
        return (self.epoch, *(notices.get(reader, 0) for reader in readers))

    def _reached(self, readers: tuple[Reader, ...], position: int) -> bool:
        return all(self.positions.get(reader, 0) >= position for reader in readers)

    def _missed_notices(self) -> None:
        """The channel is LISTENed to (again): announcements may have been missed."""
        self._subscribed = True
        self.epoch += 1

    def _advance(self, reader: Reader, position: int) -> None:
        self.notices[reader] = self.notices.get(reader, 0) + 1
        if position > self.positions.get(reader, 0):
            self.positions[reader] = position
        # Wake every waiter: each re-checks its own readers.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            log.warning("positions_refresh_failed", error=f"{type(exc).__name__}: {exc}")
