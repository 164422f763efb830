"""The reconciler: hands lost executions to the queue again.

The event store is the truth, the queue only a hint. A run can fall out of the queue: the
in-process queue dies with its process, a Redis without persistence forgets its streams, a use
case may crash between saving `Queued` and submitting. Every worker process therefore looks at
the `execution` read model now and then and resubmits
- RUNNING executions nobody holds a lease on (their worker died): the next worker resumes them;
- QUEUED executions older than a minute, when the queue is empty (so they cannot be waiting in
  it behind others).
Resubmitting is safe: a worker runs a delivery only under the lease, and an ended run is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from application.executions.leases import LEASE_SECONDS, Leases
from application.executions.queue import ExecutionQueue

log = structlog.get_logger(__name__)

BATCH = 500
QUEUED_GRACE = timedelta(seconds=60)
RUNNING_GRACE = timedelta(seconds=LEASE_SECONDS)


class Reconciler:
    def __init__(
        self, pool: AsyncConnectionPool[Any], queue: ExecutionQueue, leases: Leases
    ) -> None:
        self.pool = pool
        self.queue = queue
        self.leases = leases

    async def once(self, *, grace: bool = True) -> int:
        """Resubmit what is lost; returns how many. `grace=False` (a process starting with the
        in-process queue, which nothing else feeds) takes every unfinished run at once."""
        queued_age = QUEUED_GRACE if grace else timedelta(0)
        running_age = RUNNING_GRACE if grace else timedelta(0)
        waiting = await self.queue.depth()
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id, priority, status::text FROM execution "
                    "WHERE (status = 'RUNNING' AND updated_at <= now() - %s) "
                    "   OR (status = 'QUEUED' AND created_at <= now() - %s AND %s) "
                    "ORDER BY created_at LIMIT %s",
                    (running_age, queued_age, waiting == 0, BATCH),
                )
            ).fetchall()
        held = await self.leases.held([row[0] for row in rows])
        lost = [(row[0], row[1]) for row in rows if row[0] not in held]
        for execution_id, priority in lost:
            self.queue.submit(execution_id, priority)
        if lost:
            log.info("executions.resubmitted", count=len(lost))
        return len(lost)

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Reconcile every `interval` seconds until `stop` is set; a failed round is logged and
        the next one tries again."""
        while not stop.is_set():
            try:
                await self.once()
            except Exception:
                log.exception("executions.reconcile_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
