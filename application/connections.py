"""A process's PostgreSQL connections, held within a budget the operator sets.

A stock PostgreSQL accepts 100 connections, so every role opens a fixed, small set, whatever
its load and however many contexts or projectors it runs:

- `a2n-read` (A2N_DB_POOL_MAX, 3): queries, authentication, the worker's bookkeeping;
- `a2n-events` (A2N_DB_EVENT_STORE_POOL, 3): every context's event store, one pool shared;
- `a2n-write` (A2N_DB_WRITE_POOL, 2): outbox, data keys, webhook routes, retention, system_log;
- `a2n-projections` (A2N_DB_PROJECTION_POOL, 2): projectors and process managers, in turns;
- `a2n-listener` (1): every LISTEN of the process;
- `a2n-scheduler-lock` (1): a scheduler candidate's election lock.

Each pool keeps `A2N_DB_POOL_MIN` connections open when idle and grows to its size under load.
A connection is checked on borrow only when it has not been checked for a second or the server
wrote to it (`Checks`): a restart or a terminated backend is still noticed before a request uses
the dead connection, and a busy pool stops paying a round trip per borrow.
"""

from __future__ import annotations

import select
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from application.eventstore import shared_datastore
from application.listener import Listener
from application.settings import Settings


class Checks:
    """The check a pool runs on borrow: the pool's own round trip, skipped for a connection
    that passed it less than `every` seconds ago and has nothing to read. An idle connection
    has nothing to read unless the server wrote to it: a backend terminated or a server shutting
    down sends its goodbye and closes the socket, so that one is checked (and replaced) at once."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self._passed: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def _due(self, conn: Any) -> bool:
        if time.monotonic() - self._passed.get(conn, float("-inf")) >= self.every:
            return True
        poller = select.poll()  # not select(): it fails for descriptors above 1023
        try:
            poller.register(conn.fileno(), select.POLLIN)
        except (OSError, ValueError, psycopg.Error):
            return True
        return bool(poller.poll(0))

    def sync(self, conn: psycopg.Connection[Any]) -> None:
        if self._due(conn):
            ConnectionPool.check_connection(conn)
            self._passed[conn] = time.monotonic()

    async def async_(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._due(conn):
            await AsyncConnectionPool.check_connection(conn)
            self._passed[conn] = time.monotonic()


@dataclass(frozen=True)
class Budget:
    """How many connections a process may hold, per pool."""

    read: int
    event_store: int
    write: int
    projections: int

    @classmethod
    def of(cls, settings: Settings) -> Budget:
        return cls(
            read=settings.db_pool_max,
            event_store=settings.db_event_store_pool,
            write=settings.db_write_pool,
            projections=settings.db_projection_pool,
        )

    def total(self, *, projections: bool, scheduler: bool) -> int:
        """The most a role holds: its pools, the listener, and the scheduler's lock."""
        return (
            self.read
            + self.event_store
            + self.write
            + 1
            + (self.projections if projections else 0)
            + (1 if scheduler else 0)
        )


@dataclass
class Connections:
    """The pools and the listener of one process, open until `open_connections` exits."""

    read: AsyncConnectionPool
    write: ConnectionPool[Any]
    event_store: PostgresDatastore
    listener: Listener
    projections: ConnectionPool[Any] | None

    def usage(self) -> dict[str, dict[str, int]]:
        """Per pool: connections open, idle, the most allowed and requests waiting."""
        pools: dict[str, Any] = {
            "read": self.read,
            "write": self.write,
            "events": self.event_store.pool,
        }
        if self.projections is not None:
            pools["projections"] = self.projections
        usage = {}
        for name, pool in pools.items():
            stats = pool.get_stats()
            usage[name] = {
                "size": stats.get("pool_size", 0),
                "available": stats.get("pool_available", 0),
                "max": stats.get("pool_max", 0),
                "waiting": stats.get("requests_waiting", 0),
            }
        listening = int(self.listener.listening)
        usage["listener"] = {"size": listening, "available": 0, "max": 1, "waiting": 0}
        return usage


@asynccontextmanager
async def open_connections(
    settings: Settings, database_url: str, *, projections: bool
) -> AsyncIterator[Connections]:
    """Open the process's pools (without waiting for them to fill: a server that is full or
    restarting is retried in the background) and its listener; close them on exit."""
    budget = Budget.of(settings)
    low = settings.db_pool_min
    async with AsyncExitStack() as stack:
        read = AsyncConnectionPool(
            database_url,
            min_size=min(low, budget.read),
            max_size=budget.read,
            kwargs={"application_name": "a2n-read", "autocommit": True},
            check=Checks().async_,
            open=False,
            name="a2n-read",
        )
        await read.open(wait=False)
        stack.push_async_callback(read.close)
        write: ConnectionPool[Any] = ConnectionPool(
            database_url,
            min_size=min(low, budget.write),
            max_size=budget.write,
            kwargs={"application_name": "a2n-write", "autocommit": True},
            check=Checks().sync,
            open=False,
            name="a2n-write",
        )
        write.open(wait=False)
        stack.callback(write.close)
        event_store = shared_datastore(
            database_url, max_size=budget.event_store, check=Checks().sync
        )
        stack.callback(event_store.close)
        turns = None
        if projections:
            turns = projection_pool(database_url, budget.projections)
            turns.open(wait=False)
            stack.callback(turns.close)
        listener = Listener(database_url)
        listener.start()
        stack.callback(listener.stop)
        yield Connections(read, write, event_store, listener, turns)


def connections_in_use(conn: psycopg.Connection[Any]) -> list[tuple[str, int, int]]:
    """Every process's connections to this database by pool (application_name): how many are
    open and how many are running a statement right now."""
    rows = conn.execute(
        "SELECT coalesce(nullif(application_name, ''), '(unnamed)'), count(*), "
        "count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return [(str(name), int(total), int(active)) for name, total, active in rows]


def projection_pool(database_url: str, size: int) -> ConnectionPool[Any]:
    """The connections a process's projectors and process managers take turns on (not yet
    opened). No check on borrow: a dead connection fails its batch, which the supervisor
    retries with backoff, and the pool replaces it."""
    return ConnectionPool(
        database_url,
        min_size=1,
        max_size=max(1, size),
        kwargs={"autocommit": True, "application_name": "a2n-projections", "connect_timeout": 5},
        open=False,
        name="a2n-projections",
    )
