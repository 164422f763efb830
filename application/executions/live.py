"""Following one execution's events as they are stored: the source of live progress streams.

The event store is read directly (the aggregate's own events, with their log positions), never a
read model that could lag. Between reads a follower waits for a progress notice of its execution
(see progress.py) or, in case one got lost, for the poll interval, so a lost notice delays it by
at most that much and an idle run costs one primary-key lookup per interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from application import payloads
from application.eventstore import new_mapper
from application.executions.progress import ProgressHub
from domain.executions.execution import FINAL_EVENTS

PAGE = 100
"""Events read per query (a run's events may hold large outputs)."""
_FINAL_TOPICS = [get_topic(cls) for cls in FINAL_EVENTS]
_MAPPER = new_mapper()


@dataclass(frozen=True)
class RunEvent:
    """One stored event of a run: its aggregate version, its position in the Executions log."""

    version: int
    position: int
    event: Any

    @property
    def is_final(self) -> bool:
        return type(self.event) in FINAL_EVENTS


@dataclass(frozen=True)
class FollowTiming:
    poll_seconds: float = 1.0
    """Longest wait for a notice before reading anyway."""
    heartbeat_seconds: float = 15.0
    """Quiet time after which the follower says it is still there."""
    lifetime_seconds: float = 3600.0
    """Longest a follower runs; the client resumes after the last event it got."""


async def events_after(
    conn: AsyncConnection[Any], execution_id: str, version: int, limit: int = PAGE
) -> list[RunEvent]:
    """The run's events after aggregate version `version`, oldest first, at most `limit`."""
    cursor = await conn.execute(
        "SELECT originator_version, notification_id, topic, state FROM executions_events "
        "WHERE originator_id = %s AND originator_version > %s "
        "ORDER BY originator_version LIMIT %s",
        (execution_id, version, limit),
    )
    found = [
        RunEvent(
            version=row[0],
            position=row[1],
            event=_MAPPER.to_domain_event(
                StoredEvent(
                    originator_id=execution_id,
                    originator_version=row[0],
                    topic=row[2],
                    state=bytes(row[3]),
                )
            ),
        )
        for row in await cursor.fetchall()
    ]
    await payloads.resolve_async(conn, [run_event.event for run_event in found])
    return found


async def queued_at(conn: AsyncConnection[Any], execution_id: str) -> int | None:
    """The position of the run's first event in the Executions log, None if there is no such
    run."""
    cursor = await conn.execute(
        "SELECT notification_id FROM executions_events "
        "WHERE originator_id = %s AND originator_version = 1",
        (execution_id,),
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def ended_at(conn: AsyncConnection[Any], execution_id: str) -> int | None:
    """The version of the run's final event, None while it has not ended."""
    cursor = await conn.execute(
        "SELECT originator_version FROM executions_events "
        "WHERE originator_id = %s AND topic = ANY(%s)",
        (execution_id, _FINAL_TOPICS),
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def follow(
    pool: AsyncConnectionPool[Any],
    hub: ProgressHub,
    execution_id: str,
    after: int,
    timing: FollowTiming,
) -> AsyncIterator[RunEvent | None]:
    """The run's events after version `after` as they are stored, and None whenever nothing
    happened for `timing.heartbeat_seconds`; ends after the final event, after
    `timing.lifetime_seconds`, or when the hub closes."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + timing.lifetime_seconds
    async with hub.watch(execution_id) as watch:
        quiet_since = loop.time()
        while True:
            async with pool.connection() as conn:
                found = await events_after(conn, execution_id, after)
            for stored in found:
                yield stored
                if stored.is_final:
                    return
                after = stored.version
            now = loop.time()
            if found:
                quiet_since = now
                if len(found) == PAGE:
                    continue
            if now >= ends or hub.closed:
                return
            if now - quiet_since >= timing.heartbeat_seconds:
                yield None
                quiet_since = now
            until_heartbeat = timing.heartbeat_seconds - (now - quiet_since)
            await watch.wait(max(0.0, min(timing.poll_seconds, ends - now, until_heartbeat)))
